// The weighing page (gateway/templates/attendant.html): scale, member, category, record; the
// receipt panel; today's deposits and their voids. Plain JavaScript on the shared helpers of
// petugas.js (window.WB). Texts: Bahasa Indonesia first, English second.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const el = WB.el;
  document.body.dataset.liveBanner = "1";  // the live stream feeds the frame's banner
  const state = { member: null, category: null, scale: null, source: null, shownEvent: undefined,
                  prices: {}, receipt: null, lastStatus: null, queue: undefined, armed: false,
                  found: [] };

  const showError = (err) => WB.showError($("error"), err);

  // Record needs a member, a category and a scale, and no load already waiting (armed).
  function updateRecordButton() {
    $("record").disabled = !(state.member && state.category && state.scale) || state.armed;
  }

  // ---- state, scales and categories ----

  async function loadState() {
    const s = await WB.api("GET", "/state");
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
      b.setAttribute("aria-pressed", b.dataset.category === code ? "true" : "false");
    });
    updateRecordButton();
  }

  function chooseScale(id) {
    state.scale = id;
    $("scale").value = id;
    if (state.source) { state.source.close(); }
    state.shownEvent = undefined;
    const source = new EventSource("/petugas/api/scales/" + encodeURIComponent(id) + "/live");
    source.onmessage = (ev) => onLive(JSON.parse(ev.data));
    // Closed for good (not a reconnect): the session may have ended; WB.api reloads on a 401.
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        WB.api("GET", "/state").catch(() => WB.banner({ unreachable: true }));
      }
    };
    state.source = source;
    updateRecordButton();
  }

  // After each deposit the next one starts from nothing: the next load must not go to the
  // last member or category by accident.
  function clearSelection() {
    state.member = null;
    state.category = null;
    $("selected-member").textContent = "";
    document.querySelectorAll("#categories button").forEach((b) => {
      b.classList.remove("chosen");
      b.setAttribute("aria-pressed", "false");
    });
    updateRecordButton();
  }

  // ---- live weight ----

  // What the indicator itself reports (gateway/scale_state.py): said before anything else, so
  // an overloaded scale never reads as one that is merely moving.
  const FAULTS = ["overload", "underload", "indicator_error", "undetected", "stale"];

  function scaleText(v) {
    if (!v.connected) { return "Timbangan tidak terhubung / scale not connected"; }
    if (FAULTS.includes(v.state)) { return "⚠ " + v.state_text; }
    if (v.waiting_for_zero) { return "Angkat beban, tunggu nol / take the load off, wait for zero"; }
    if (v.armed_member_no) {
      return "Siap: letakkan " + (v.armed_category_name || v.armed_category_code) + " untuk " +
        (v.armed_member_name || v.armed_member_no) + " / Ready: put the load on";
    }
    if (v.state === "zero_drift") { return "⚠ " + v.state_text; }
    // The gateway holds "stabil" until the load has moved for 0,7 s (gateway/stable_mark.py);
    // no weight shown (nothing read yet, a status line, a fault starting) is "bergerak" too.
    // The words are gateway/scale_state.py's STATE_TEXT for ok and unsettled, as /scales says.
    return v.stable ? "● stabil / stable" : "~ bergerak / moving";
  }

  // Every scale's state in the list, and a line naming each other scale in trouble (any state
  // but ok and unsettled): an overload on a scale not shown must not go unseen.
  const WORKING = ["ok", "unsettled"];

  function markScales(marks) {
    const troubled = (m) => !WORKING.includes(m.state);
    const byId = new Map(marks.map((m) => [m.scale_id, m]));
    Array.from($("scale").options).forEach((o) => {
      const m = byId.get(o.value);
      o.textContent = m && troubled(m) ? o.value + " ⚠ " + m.state_text : o.value;
      o.dataset.state = m ? m.state : "";
    });
    const others = marks.filter((m) => m.scale_id !== state.scale && troubled(m));
    $("other-scales").textContent = others.map((m) => "⚠ " + m.scale_id + ": " + m.state_text)
      .join(" · ");
  }

  function onLive(v) {
    const w = $("weight");
    w.textContent = v.grams === null ? "—" : WB.kg(v.grams);
    w.className = "weight " + (v.stable ? "stable" : "moving");
    $("scale-state").textContent = scaleText(v);
    $("scale-state").dataset.state = v.state;
    $("scale-state").classList.toggle("fault", FAULTS.includes(v.state));
    $("scale-state").dataset.armed = v.armed_member_no ? "yes" : "no";
    $("scale-state").dataset.stable = v.stable ? "yes" : "no";
    markScales(v.scales || []);
    state.armed = Boolean(v.armed_member_no);
    updateRecordButton();
    WB.banner(v);
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
      clearSelection();
      loadJournal();
    } else if (last && state.receipt && last.event_id === state.receipt.event_id) {
      // sent, applied by the ledger (its amount, even when equal to the estimate), or repriced
      if (last.status !== state.lastStatus || last.amount_idr !== state.receipt.amount_idr ||
          last.estimate !== state.receipt.estimate) {
        showReceipt(last);
        loadJournal();
      }
    }
  }

  function cardTap(card) {
    const box = $("card-tap");
    if (!card || (state.member && card.member_no === state.member.member_no)) {
      box.classList.remove("show");
      return;
    }
    box.classList.add("show");
    if (card.member_no) {
      $("card-text").textContent = "Kartu / Card: " + card.member_name + " (" + card.member_no + ")";
      $("card-use").hidden = false;
      $("card-use").onclick = () => chooseMember({ member_no: card.member_no, name: card.member_name });
    } else {
      $("card-text").textContent = "Kartu tidak dikenal / unknown card " + card.uid;
      $("card-use").hidden = true;
    }
  }

  // ---- members ----

  let searchTimer = null;
  let searchSeq = 0;

  async function search() {
    const q = $("member-q").value.trim();
    const list = $("members");
    const seq = ++searchSeq;
    if (!q) { list.replaceChildren(); state.found = []; return state.found; }
    const found = await WB.api("GET", "/members?q=" + encodeURIComponent(q));
    if (seq !== searchSeq) { return null; }  // a newer query is on its way
    state.found = found;
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
    return found;
  }

  function onSearch() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => search().catch(showError), 150);
  }

  // Enter: search now, and take the member when there is only one.
  async function onSearchKey(e) {
    if (e.key !== "Enter") { return; }
    e.preventDefault();
    clearTimeout(searchTimer);
    try {
      const found = await search();
      if (found && found.length === 1) { chooseMember(found[0]); }
    } catch (err) { showError(err); }
  }

  function chooseMember(m) {
    state.member = m;
    $("selected-member").textContent = "Nasabah / Member: " + m.name + " (" + m.member_no + ")";
    $("members").replaceChildren();
    $("member-q").value = "";
    showError(null);
    updateRecordButton();
  }

  // ---- record, cancel ----

  async function record() {
    showError(null);
    try {
      await WB.api("POST", "/scales/" + encodeURIComponent(state.scale) + "/record",
        { member_no: state.member.member_no, category_code: state.category });
    } catch (e) { showError(e); }  // the selection stays: fix and try again
  }

  async function cancel() {
    showError(null);
    try { await WB.api("POST", "/scales/" + encodeURIComponent(state.scale) + "/cancel"); }
    catch (e) { showError(e); }
  }

  // ---- the receipt panel ----
  // Its figures are the deposit view's (the receipts module's rule: the ledger's amount once
  // applied, else an estimate); the printable receipt is /petugas/struk/setoran/<id>.

  // "Jumlah / Amount" once the ledger's, "Perkiraan / Estimate" before (the deposit view says).
  function amountLabel(d) {
    return d.amount_label || (d.estimate === false ? "Jumlah / Amount" : "Perkiraan / Estimate");
  }

  function memberText(d) {
    return (d.member_name || "") + " (" + (d.member_no || d.card_uid || "") + ")";
  }

  function receiptText(d) {
    return [
      "Bank Sampah — bukti setoran / deposit receipt",
      "Nasabah / Member: " + memberText(d),
      "Jenis / Category: " + d.category_name,
      "Berat / Weight: " + WB.kg(d.net_g),
      d.price_text ? "Harga / Price: " + d.price_text : null,
      d.amount_idr !== null ? amountLabel(d) + ": " + WB.rupiah(d.amount_idr) : null,
      "Waktu / Time: " + WB.time(d.recorded_at),
      "No. setoran / Deposit id: " + d.event_id,
    ].filter(Boolean).join("\n");
  }

  function showReceipt(d) {
    state.receipt = d;
    state.lastStatus = d.status;
    const final = d.estimate === false;  // the ledger's amount
    $("r-member").textContent = memberText(d);
    $("r-category").textContent = d.category_name;
    $("r-weight").textContent = WB.kg(d.net_g);
    $("r-price").textContent = d.price_text || "—";
    $("r-amount-label").textContent = amountLabel(d);
    $("r-amount").textContent = d.amount_idr === null ? "—" : WB.rupiah(d.amount_idr);
    $("r-time").textContent = WB.time(d.recorded_at);
    $("r-event").textContent = d.event_id;
    $("r-status").textContent = d.status_text;
    $("r-status").className = "st-" + d.status;
    $("r-note").hidden = final;
    $("receipt").classList.toggle("estimate", !final);
    $("receipt-link").href = d.receipt_url || ("/petugas/struk/setoran/" + encodeURIComponent(d.event_id));
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

  // ---- today's deposits and voids ----

  function depositItem(d) {
    const li = el("li", { "data-event": d.event_id });
    if (d.void_state === "done" || d.void_state === "pending") { li.classList.add("voided"); }
    const top = el("div", { class: "who" });
    top.append(el("span", { class: "time" }, WB.clock(d.recorded_at)),
      document.createTextNode(d.member_name || d.member_no || d.card_uid || "—"));
    const amount = el("div", { class: "amount" }, d.amount_idr === null ? "—" : WB.rupiah(d.amount_idr));
    const what = el("div", { class: "what" }, d.category_name + " · " + WB.kg(d.net_g));
    const status = el("div", { class: "state" });
    status.append(el("span", { class: "st-" + d.status }, d.status_text));
    if (d.void_text) {
      status.append(document.createTextNode(" · "),
        el("span", { class: "st-" + (d.void_state === "done" ? "sent" : d.void_state) }, d.void_text));
    }
    if (d.void_state === "refused" && d.void_error) {
      status.append(el("br"), el("span", { class: "muted" }, d.void_error));
    }
    li.append(top, amount, what, status);
    if (!d.void_state || d.void_state === "refused") {
      const act = el("div", { class: "act" });
      const b = el("button", { type: "button", class: "void small" }, "Batalkan / Void");
      b.addEventListener("click", () => askVoid(d));
      act.append(b);
      li.append(act);
    }
    return li;
  }

  async function loadJournal() {
    let rows;
    try { rows = await WB.api("GET", "/deposits"); } catch (e) { showError(e); return; }
    const list = $("journal");
    list.replaceChildren();
    if (!rows.length) { list.append(el("li", { class: "muted" }, "Belum ada / none yet")); }
    rows.forEach((d) => list.append(depositItem(d)));
  }

  // The void dialog: what is voided, a red button, a reason that may not be blank.
  async function askVoid(d) {
    const done = await WB.confirm({
      title: "Batalkan setoran? / Void this deposit?",
      rows: [
        ["Nasabah / Member", memberText(d)],
        ["Jenis / Category", d.category_name],
        ["Berat / Weight", WB.kg(d.net_g)],
        [amountLabel(d), d.amount_idr === null ? "—" : WB.rupiah(d.amount_idr)],
        ["Waktu / Time", WB.time(d.recorded_at)],
        ["No. setoran / Deposit id", d.event_id],
      ],
      danger: true,
      confirmText: "Batalkan setoran / Void deposit",
      cancelText: "Jangan / Keep it",
      reasonRequired: true,
      reasonLabel: "Alasan (wajib) / Reason (required)",
      action: ({ reason }) => WB.api("POST", "/deposits/" + encodeURIComponent(d.event_id) + "/void",
        { reason }),
    });
    if (done) { loadJournal(); }
  }

  // ---- wiring ----

  $("scale").addEventListener("change", (e) => chooseScale(e.target.value));
  $("member-q").addEventListener("input", onSearch);
  $("member-q").addEventListener("keydown", onSearchKey);
  $("record").addEventListener("click", record);
  $("cancel").addEventListener("click", cancel);
  $("print").addEventListener("click", () => window.print());
  $("share").addEventListener("click", share);
  loadState().catch(showError);
  loadJournal();
  setInterval(loadJournal, 30000);
})();
