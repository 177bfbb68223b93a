// The stock page (gateway/templates/stock.html): record a sale to a pengepul, a transfer to the
// induk or residue; the stock per category (table and plain CSS bars) from the ledger; what was
// recorded here today. The gateway keeps each movement under a key drawn here (its client id)
// before it sends it (gateway/http/attendant/stock.py): pressed twice, or sent again after an
// outage, it is recorded once. Weights are typed in kg with a decimal comma ("12,5") and sent as
// whole grams.
"use strict";

(function () {
  const WB = window.WB;
  const $ = (id) => document.getElementById(id);
  const keys = {};  // the client id of each form's pending submission

  function newKey() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);  // randomUUID needs https; the LAN page may be http
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // "12,5" -> 12500, "1.234,5" -> 1234500, "0,25" -> 250: kg with a decimal comma (at most 3
  // decimals: grams), dots only as thousands. null for anything else ("12.5", "1e5", "-1").
  const KG = /^(\d{1,3}(\.\d{3})+|\d+)(,\d{1,3})?$/;
  function gramsOf(text) {
    const v = (text || "").trim().replace(/\s/g, "");
    if (!KG.test(v)) { return null; }
    const [whole, frac] = v.replace(/\./g, "").split(",");
    return Number(whole) * 1000 + Number((frac || "").padEnd(3, "0"));
  }

  // Our own check of the kg fields beside WB.validate's (required, Rupiah).
  function checkKg(input, required) {
    const label = input.dataset.label || "Berat / Weight";
    const err = document.getElementById(input.id + "-error") || (function () {
      const p = WB.el("p", { class: "field-error", id: input.id + "-error", "aria-live": "polite" });
      input.insertAdjacentElement("afterend", p);
      return p;
    })();
    const text = input.value.trim();
    let msg = "";
    if (!text) {
      if (required) { msg = label + ": wajib diisi / required"; }
    } else {
      const g = gramsOf(text);
      if (g === null) {
        msg = label + ": tulis dalam kg dengan koma, mis. 12,5 / write kg with a decimal comma, e.g. 12,5";
      } else if (g <= 0 && required) {
        msg = label + ": harus lebih dari 0 / must be more than 0";
      }
    }
    err.textContent = msg;
    if (msg) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    return !msg;
  }

  function valid(form) {
    let ok = WB.validate(form);
    form.querySelectorAll("input.kg").forEach((input) => {
      const required = input.required;
      if (!checkKg(input, required)) { if (ok) { input.focus(); } ok = false; }
    });
    return ok;
  }

  // ---- the sale's total, as the gateway computes it (wastebank.money_rules.amount_for) ----

  function saleTotal() {
    const g = gramsOf($("sale-kg").value);
    const price = WB.int($("sale-price"));
    const total = g !== null && price !== null ? Math.floor((g * price + 500) / 1000) : 0;
    $("sale-total").textContent = WB.rupiah(total);
    return total;
  }
  ["sale-kg", "sale-price"].forEach((id) => $(id).addEventListener("input", saleTotal));

  // ---- tabs ----

  document.querySelectorAll(".tabs button").forEach((b) => {
    b.addEventListener("click", () => {
      document.querySelectorAll(".tabs button").forEach((x) => {
        x.setAttribute("aria-pressed", x === b ? "true" : "false");
      });
      document.querySelectorAll(".move-form").forEach((f) => { f.hidden = f.dataset.kind !== b.dataset.tab; });
    });
  });

  // ---- the stock ----

  function fillSelect(select, items, value, text) {
    const kept = select.value;
    select.replaceChildren(WB.el("option", { value: "" }, "— pilih / choose —"));
    items.forEach((it) => select.append(WB.el("option", { value: value(it) }, text(it))));
    if (kept) { select.value = kept; }
  }

  function drawStock(lines) {
    const body = document.querySelector("#stock-table tbody");
    body.replaceChildren();
    const bars = $("stock-bars");
    bars.replaceChildren();
    const most = Math.max(1, ...lines.map((l) => l.held_g));
    lines.forEach((l) => {
      const out = l.transferred_g + l.residue_g + l.burned_g;
      const tr = WB.el("tr", { "data-category": l.category_code });
      tr.append(WB.el("td", {}, l.category_name),
        WB.el("td", { class: "num" }, WB.kg(l.deposited_g + l.received_g)),
        WB.el("td", { class: "num" }, WB.kg(l.sold_g)),
        WB.el("td", { class: "num" }, WB.kg(out)),
        WB.el("td", { class: "num held", "data-held-g": String(l.held_g) }, WB.kg(l.held_g)));
      body.append(tr);
      const row = WB.el("div", { class: "bar-row" });
      const track = WB.el("div", { class: "bar-track" });
      const bar = WB.el("div", { class: "bar" });
      bar.style.width = Math.max(0, Math.round(100 * l.held_g / most)) + "%";
      track.append(bar);
      row.append(WB.el("span", { class: "name" }, l.category_name), track, WB.el("span", { class: "num" }, WB.kg(l.held_g)));
      bars.append(row);
    });
    if (!lines.length) {
      const tr = WB.el("tr");
      tr.append(WB.el("td", { colspan: "5", class: "muted" }, "Belum ada stok / No stock yet"));
      body.append(tr);
    }
  }

  function drawMoves(moves) {
    const list = $("moves");
    list.replaceChildren();
    if (!moves.length) { list.append(WB.el("p", { class: "muted" }, "Belum ada / None yet")); return; }
    moves.forEach((m) => {
      const item = WB.el("div", { class: "mv", "data-key": m.key, "data-state": m.state });
      let text = m.kind_text + ": " + m.category_name + " " + m.kg_text;
      if (m.kind === "sale") { text += " → " + (m.collector_name || "") + " " + WB.rupiah(m.revenue_idr); }
      item.append(WB.el("div", {}, text));
      const meta = WB.el("div", { class: "muted small" }, WB.clock(m.asked_at) + " · " + m.by + " · ");
      meta.append(WB.el("span", { class: "st-" + m.state }, m.state_text));
      item.append(meta);
      if (m.error && m.state === "refused") { item.append(WB.el("div", { class: "error" }, m.error)); }
      if (m.receipt_url) { item.append(WB.el("a", { href: m.receipt_url, class: "small" }, "Struk / Receipt")); }
      list.append(item);
    });
  }

  async function load() {
    try {
      const v = await WB.api("GET", "/stock");
      drawStock(v.stock);
      drawMoves(v.moves);
      fillSelect($("sale-collector"), v.collectors, (c) => c.code, (c) => c.name);
      document.querySelectorAll("select.category").forEach((s) => {
        fillSelect(s, v.categories, (c) => c.code, (c) => c.name);
      });
      $("stock-at").textContent = (v.online ? "Dari buku besar / From the ledger: " : "Salinan / Copy: ") +
        (v.stock_at ? WB.time(v.stock_at) : "—") + (v.queued ? " · " + v.queued + " antri / queued" : "");
      WB.showError("stock-error", v.message || null);
    } catch (err) {
      WB.showError("stock-error", err);
    }
  }

  // ---- recording ----

  function done(v, status) {
    const box = $("move-result");
    const queued = status === 202;
    box.classList.add("show");
    box.classList.toggle("queued", queued);
    let text = v.kind_text + " " + v.category_name + " " + v.kg_text;
    if (v.kind === "sale") { text += " · " + WB.rupiah(v.revenue_idr); }
    text += queued ? " — antri: dikirim saat internet tersambung / queued: sent when online"
      : " — tercatat di buku besar / recorded in the ledger";
    $("move-result-text").textContent = text;
    const receipt = $("move-receipt");
    receipt.hidden = !v.receipt_url;
    if (v.receipt_url) { receipt.href = v.receipt_url; }
  }
  $("move-result-close").addEventListener("click", () => $("move-result").classList.remove("show"));

  async function post(form, path, body) {
    const kind = form.dataset.kind;
    const submit = form.querySelector("button[type=submit]");
    keys[kind] = keys[kind] || newKey();
    submit.disabled = true;
    WB.showError(kind + "-error", null);
    try {
      const resp = await fetch("/petugas/api/stock/" + path, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": WB.csrf },
        body: JSON.stringify({ ...body, key: keys[kind] }),
      }).catch(() => null);
      if (resp === null) { throw new WB.ApiError(0, "Gateway tidak terjangkau; coba lagi / The gateway cannot be reached: try again"); }
      const data = await resp.json().catch(() => null);
      if (!resp.ok) {
        const detail = data && typeof data.detail === "string" ? data.detail : "Ditolak (" + resp.status + ") / Refused";
        if (resp.status !== 0 && resp.status < 500) { keys[kind] = null; }  // refused: a new try is a new record
        throw new WB.ApiError(resp.status, detail, data);
      }
      keys[kind] = null;
      form.reset();
      saleTotal();
      done(data, resp.status);
      await load();
    } catch (err) {
      WB.showError(kind + "-error", err);
    } finally {
      submit.disabled = false;
    }
  }

  $("sale-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (!valid(e.target)) { return; }
    post(e.target, "sales", {
      collector: $("sale-collector").value,
      category: $("sale-category").value,
      grams: gramsOf($("sale-kg").value),
      price_per_kg_idr: WB.int($("sale-price")),
      payment_method: $("sale-method").value,
      note: $("sale-note").value.trim(),
    });
  });

  $("transfer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (!valid(e.target)) { return; }
    const received = $("transfer-received").value.trim();
    post(e.target, "transfers", {
      category: $("transfer-category").value,
      grams: gramsOf($("transfer-kg").value),
      received_g: received ? gramsOf(received) : null,
      note: $("transfer-note").value.trim(),
    });
  });

  $("residue-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (!valid(e.target)) { return; }
    post(e.target, "residue", {
      category: $("residue-category").value,
      grams: gramsOf($("residue-kg").value),
      kind: $("residue-kind").value,
      note: $("residue-note").value.trim(),
    });
  });

  $("stock-refresh").addEventListener("click", load);
  window.WBStock = { gramsOf };  // for the page tests
  load();
})();
