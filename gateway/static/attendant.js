// The attendant page (gateway/attendant.py): plain JavaScript, no libraries, everything from the
// gateway on the bank's LAN. Texts: Bahasa Indonesia first, English second.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  document.body.dataset.liveBanner = "1";  // the live stream feeds the frame's banner
  const api = "/petugas/api";
  const state = { member: null, category: null, scale: null, source: null, shownEvent: undefined,
                  prices: {}, receipt: null, lastStatus: null, queue: undefined };

  // Every write carries the session's CSRF token (gateway/attendant.py), from the page's meta.
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  async function call(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") { opts.headers["X-CSRF-Token"] = csrf; }
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(api + path, opts);
    if (resp.status === 401) { window.location.reload(); throw new Error("401"); }
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      let detail = data && data.detail;
      if (Array.isArray(detail)) { detail = detail.map((d) => d.msg).join("; "); }
      throw new Error(detail || ("HTTP " + resp.status));
    }
    return data;
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function showError(msg) { $("error").textContent = msg || ""; }

  function updateRecordButton() {
    $("record").disabled = !(state.member && state.category && state.scale);
  }

  // ---- state, scales and categories ----

  async function loadState() {
    const s = await call("GET", "/state");
    $("today").textContent = s.today_text;
    const select = $("scale");
    select.replaceChildren();
    s.scales.forEach((sc) => select.append(el("option", { value: sc.scale_id }, sc.scale_id)));
    if (!s.scales.length) { showError("Tidak ada timbangan petugas / no attendant scale"); }
    const cats = $("categories");
    cats.replaceChildren();
    s.prices.forEach((p) => {
      state.prices[p.category_code] = p;
      const b = el("button", { type: "button", "data-category": p.category_code });
      b.append(el("span", {}, p.category_name), el("span", { class: "muted" }, p.price_text));
      b.addEventListener("click", () => chooseCategory(p.category_code));
      cats.append(b);
    });
    if (!s.prices.length) {
      cats.append(el("p", { class: "muted" }, "Daftar harga belum ada / no price list yet"));
    }
    $("directory-age").textContent = s.members_synced_text
      ? s.members + " nasabah, diperbarui / updated " + s.members_synced_text
      : "Daftar nasabah belum ada / no member list yet";
    if (s.scales.length) { chooseScale(s.scales[0].scale_id); }
  }

  function chooseCategory(code) {
    state.category = code;
    document.querySelectorAll("#categories button").forEach((b) => {
      b.classList.toggle("chosen", b.dataset.category === code);
    });
    updateRecordButton();
  }

  function chooseScale(id) {
    state.scale = id;
    $("scale").value = id;
    if (state.source) { state.source.close(); }
    state.shownEvent = undefined;
    const source = new EventSource(api + "/scales/" + encodeURIComponent(id) + "/live");
    source.onmessage = (ev) => onLive(JSON.parse(ev.data));
    // Closed for good (not a reconnect): the session may have ended; /state reloads on a 401.
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) { call("GET", "/state").catch(() => {}); }
    };
    state.source = source;
    updateRecordButton();
  }

  // ---- live weight ----

  function onLive(v) {
    const w = $("weight");
    w.textContent = v.weight_text;
    w.className = "weight " + (v.stable ? "stable" : "moving");
    let text;
    if (!v.connected) {
      text = "Timbangan tidak terhubung / scale not connected";
    } else if (v.waiting_for_zero) {
      text = "Angkat beban, tunggu nol / take the load off, wait for zero";
    } else if (v.armed_member_no) {
      text = "Siap: letakkan sampah " + v.armed_category_code + " untuk " + v.armed_member_no +
        " / Ready: put the load on";
    } else {
      text = v.stable ? "● stabil / stable" : "~ bergerak / moving";
    }
    $("scale-state").textContent = text;
    $("scale-state").dataset.armed = v.armed_member_no ? "yes" : "no";
    banner(v);
    cardTap(v.card);
    const queue = v.outbox_depth + "/" + v.pending_voids;
    if (state.queue !== undefined && queue !== state.queue) { loadJournal(); }
    state.queue = queue;
    const last = v.last_deposit;
    const lastId = last ? last.event_id : null;
    if (state.shownEvent === undefined) {
      state.shownEvent = lastId;  // what was recorded before this page opened: not a receipt
    } else if (lastId && lastId !== state.shownEvent) {
      state.shownEvent = lastId;
      showReceipt(last);
      loadJournal();
    } else if (last && state.receipt && last.event_id === state.receipt.event_id) {
      if (last.status !== state.lastStatus) { showReceipt(last); loadJournal(); }
    }
  }

  function banner(v) {
    const parts = [];
    if (!v.broker_connected) {
      parts.push("Koneksi ke server terputus: setoran disimpan di gateway dan dikirim nanti / " +
        "No connection to the server: deposits are kept on the gateway and sent later.");
    }
    if (v.outbox_depth > 0) {
      parts.push(v.outbox_depth + " pesan menunggu dikirim / waiting to be sent.");
    }
    if (v.central_online === false) {
      parts.push("API pusat tidak terjangkau: daftar nasabah dari salinan gateway / " +
        "Central API unreachable: the member list is the gateway's copy.");
    }
    if (v.pending_voids > 0) {
      parts.push(v.pending_voids + " pembatalan menunggu / voids pending.");
    }
    const b = $("banner");
    b.textContent = parts.join(" ");
    b.classList.toggle("show", parts.length > 0 && (!v.broker_connected || v.outbox_depth > 0 ||
      v.central_online === false || v.pending_voids > 0));
  }

  function cardTap(card) {
    const box = $("card-tap");
    if (!card || (state.member && card.member_no === state.member.member_no)) {
      box.classList.remove("show");
      return;
    }
    box.classList.add("show");
    if (card.member_no) {
      $("card-text").textContent = "Kartu / Card " + card.uid + ": " + card.member_name +
        " (" + card.member_no + ")";
      $("card-use").hidden = false;
      $("card-use").onclick = () => chooseMember({ member_no: card.member_no, name: card.member_name });
    } else {
      $("card-text").textContent = "Kartu tidak dikenal / unknown card " + card.uid;
      $("card-use").hidden = true;
    }
  }

  // ---- members ----

  let searchTimer = null;
  function onSearch() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(async () => {
      const q = $("member-q").value.trim();
      const list = $("members");
      if (!q) { list.replaceChildren(); return; }
      try {
        const found = await call("GET", "/members?q=" + encodeURIComponent(q));
        list.replaceChildren();
        if (!found.length) {
          list.append(el("p", { class: "muted" }, "Tidak ditemukan / not found"));
        }
        found.forEach((m) => {
          const b = el("button", { type: "button", "data-member": m.member_no });
          b.append(el("span", {}, m.name), el("span", { class: "muted" }, m.member_no));
          b.addEventListener("click", () => chooseMember(m));
          list.append(b);
        });
      } catch (e) { showError(e.message); }
    }, 150);
  }

  function chooseMember(m) {
    state.member = m;
    $("selected-member").textContent = "Nasabah / Member: " + m.name + " (" + m.member_no + ")";
    $("members").replaceChildren();
    $("member-q").value = "";
    updateRecordButton();
  }

  // ---- record, cancel ----

  async function record() {
    showError("");
    try {
      await call("POST", "/scales/" + encodeURIComponent(state.scale) + "/record",
        { member_no: state.member.member_no, category_code: state.category });
    } catch (e) { showError(e.message); }
  }

  async function cancel() {
    showError("");
    try { await call("POST", "/scales/" + encodeURIComponent(state.scale) + "/cancel"); }
    catch (e) { showError(e.message); }
  }

  // ---- the receipt ----

  function receiptText(d) {
    return [
      "Bank Sampah — bukti setoran / deposit receipt",
      "Nasabah / Member: " + (d.member_name || "") + " (" + (d.member_no || d.card_uid || "") + ")",
      "Jenis / Category: " + d.category_name,
      "Berat / Weight: " + d.weight_text,
      d.price_text ? "Harga / Price: " + d.price_text : null,
      d.amount_text ? "Perkiraan / Estimate: " + d.amount_text : null,
      "Waktu / Time: " + d.recorded_text,
      "No. setoran / Deposit id: " + d.event_id,
    ].filter(Boolean).join("\n");
  }

  function showReceipt(d) {
    state.receipt = d;
    state.lastStatus = d.status;
    $("r-member").textContent = (d.member_name || "") + " (" + (d.member_no || d.card_uid || "") + ")";
    $("r-category").textContent = d.category_name;
    $("r-weight").textContent = d.weight_text;
    $("r-price").textContent = d.price_text || "—";
    $("r-amount").textContent = d.amount_text || "—";
    $("r-time").textContent = d.recorded_text;
    $("r-event").textContent = d.event_id;
    $("r-status").textContent = d.status_text;
    $("r-status").className = "st-" + d.status;
    $("whatsapp").href = "https://wa.me/?text=" + encodeURIComponent(receiptText(d));
    $("receipt").classList.add("show");
  }

  async function share() {
    const d = state.receipt;
    if (!d) { return; }
    const text = receiptText(d);
    if (navigator.share) {
      try { await navigator.share({ title: "Bukti setoran / Deposit receipt", text }); return; }
      catch (e) { if (e.name === "AbortError") { return; } }
    }
    window.open("https://wa.me/?text=" + encodeURIComponent(text), "_blank", "noopener");
  }

  // ---- today's journal and voids ----

  async function loadJournal() {
    let rows;
    try { rows = await call("GET", "/deposits"); } catch (e) { showError(e.message); return; }
    const body = $("journal");
    body.replaceChildren();
    if (!rows.length) {
      const tr = el("tr");
      tr.append(el("td", { colspan: "7", class: "muted" }, "Belum ada / none yet"));
      body.append(tr);
    }
    rows.forEach((d) => {
      const tr = el("tr", { "data-event": d.event_id });
      if (d.void_state === "done" || d.void_state === "pending") { tr.classList.add("voided"); }
      tr.append(
        el("td", {}, d.time_text),
        el("td", {}, (d.member_name || "") + " " + (d.member_no || d.card_uid || "")),
        el("td", {}, d.category_name),
        el("td", { class: "num" }, d.weight_text),
        el("td", { class: "num" }, d.amount_text || "—"),
      );
      const status = el("td", { class: "status" });
      status.append(el("span", { class: "st-" + d.status }, d.status_text));
      if (d.void_text) {
        status.append(el("br"), el("span", { class: "st-" + (d.void_state === "done" ? "sent" : d.void_state) },
          d.void_text));
      }
      if (d.void_state === "refused" && d.void_error) {
        status.append(el("br"), el("span", { class: "muted" }, d.void_error));
      }
      tr.append(status);
      const act = el("td", { class: "act" });
      if (!d.void_state || d.void_state === "refused") {
        const b = el("button", { type: "button", class: "void" }, "Batalkan / Void");
        b.addEventListener("click", () => askVoid(d.event_id));
        act.append(b);
      }
      tr.append(act);
      body.append(tr);
    });
  }

  function askVoid(eventId) {
    $("void-event").textContent = eventId;
    $("void-reason").value = "";
    $("void-error").textContent = "";
    $("void-dialog").dataset.event = eventId;
    $("void-dialog").showModal();
  }

  async function onVoidClose() {
    const dlg = $("void-dialog");
    if (dlg.returnValue !== "confirm") { return; }
    const reason = $("void-reason").value.trim();
    if (!reason) { return; }
    try {
      await call("POST", "/deposits/" + encodeURIComponent(dlg.dataset.event) + "/void", { reason });
    } catch (e) { showError(e.message); }
    loadJournal();
  }

  // ---- wiring ----

  $("scale").addEventListener("change", (e) => chooseScale(e.target.value));
  $("member-q").addEventListener("input", onSearch);
  $("record").addEventListener("click", record);
  $("cancel").addEventListener("click", cancel);
  $("print").addEventListener("click", () => window.print());
  $("share").addEventListener("click", share);
  $("void-dialog").addEventListener("close", onVoidClose);
  loadState().catch((e) => showError(e.message));
  loadJournal();
  setInterval(loadJournal, 30000);
})();
