// Members at the bank (gateway/templates/members.html, routes gateway/http/attendant/members.py):
// register a walk-in, bind a card tapped on the scale's reader (the scale's live stream brings
// the tap), issue or reset a PIN and print its slip, switch a member's SMS receipts on or off
// (online only: the central API keeps the opt-in), refresh the directory and prices now.
// Shared helpers: window.WB (petugas.js). Texts: Bahasa Indonesia first, English second.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  let member = null;  // {member_no, name, cards}: the member chosen
  let card = null;  // {uid, member_no, member_name}: the reader's last tap (fresh for 60 s)
  let online = true;
  const sources = [];
  const SMS_OFFLINE = "Tanpa internet: status SMS perlu server pusat / Offline: SMS needs the central server";

  // ---- the directory's and prices' age, refresh ----

  function showSync(s) {
    $("sync-members").textContent = String(s.members);
    $("sync-members-age").textContent = s.members_synced_text || "belum / never";
    $("sync-prices-age").textContent = s.prices_synced_text || "belum / never";
  }

  function setOnline(value) {
    const was = online;
    online = value;
    $("online-note").hidden = online;
    $("reg-submit").disabled = !online;
    updateButtons();
    if (member && was !== online) { loadSms(); }
  }

  async function loadState(first) {
    const st = await WB.api("GET", "/state");
    showSync(st);
    setOnline(st.central_configured && st.central_online !== false && !st.who.offline);
    if (first) { st.scales.forEach((s) => listen(s.scale_id)); }
  }

  async function refresh() {
    const btn = $("sync-refresh");
    btn.disabled = true;
    $("sync-msg").textContent = "menyegarkan… / refreshing…";
    try {
      const s = await WB.api("POST", "/sync");
      showSync(s);
      $("sync-msg").textContent = s.online
        ? "Diperbarui dari server pusat / Updated from the central server"
        : "Server pusat tidak terjangkau: salinan gateway dipakai / Central server unreachable: the gateway's copy is used";
      await loadState(false);
    } catch (err) {
      WB.showError("sync-msg", err);
    } finally {
      btn.disabled = false;
    }
  }

  // ---- registration ----

  async function proposeNumber() {
    if (!online || $("reg-no").value.trim()) { return; }
    try {
      const r = await WB.api("GET", "/members/next-no");
      if (!$("reg-no").value.trim()) { $("reg-no").value = r.member_no; }
    } catch (err) {
      if (err.status === 503) { setOnline(false); }
    }
  }

  async function register(ev) {
    ev.preventDefault();
    const form = $("reg-form");
    WB.showError("reg-error", null);
    if (!WB.validate(form)) { return; }
    const body = { member_no: $("reg-no").value.trim(), name: $("reg-name").value.trim() };
    const optional = { phone: $("reg-phone").value.trim(), kelurahan: $("reg-kelurahan").value.trim(),
                       nik: $("reg-nik").value.trim() };
    Object.entries(optional).forEach(([k, v]) => { if (v) { body[k] = v; } });
    ["rt", "rw"].forEach((k) => { const n = WB.int($("reg-" + k)); if (n !== null) { body[k] = n; } });
    if ($("reg-sms").checked) { body.sms_opt_in = true; }
    $("reg-submit").disabled = true;
    try {
      const m = await WB.api("POST", "/members", body);
      form.reset();
      phoneForSms();
      choose(m);
      $("sync-msg").textContent = "Terdaftar / Registered: " + m.name + " (" + m.member_no + ")";
      if (m.sms_error) {  // registered all the same; SMS stays off
        WB.showError("sms-error", "Terdaftar tanpa SMS / Registered without SMS: " + m.sms_error);
      }
      proposeNumber();
    } catch (err) {
      WB.showError("reg-error", err);
      if (err.status === 503) { setOnline(false); }
    } finally {
      $("reg-submit").disabled = !online;
    }
  }

  // SMS needs a phone: ticking SMS makes the phone required (our own message); whether it is a
  // mobile number is the central API's rule (its 422 is shown as it words it).
  function phoneForSms() {
    $("reg-phone").required = $("reg-sms").checked;
  }

  // ---- SMS receipts of the chosen member ----

  const smsPath = () => "/members/" + encodeURIComponent(member.member_no) + "/sms";
  let smsSeq = 0;

  function showSms(s) {
    const cb = $("sms-opt-in");
    cb.checked = s.sms_opt_in;
    cb.disabled = !online;
    $("sms-box").dataset.sms = s.sms_opt_in ? "on" : "off";
    $("sms-text").textContent = !s.phone
      ? "Belum ada nomor HP / No phone number on file"
      : (s.sms_opt_in ? "Aktif: struk ke / On: receipts to " : "Mati: tanpa SMS ke / Off: no SMS to ") + s.phone;
  }

  async function loadSms() {
    const seq = ++smsSeq;
    const cb = $("sms-opt-in");
    WB.showError("sms-error", null);
    $("sms-box").hidden = !member;
    $("sms-box").dataset.sms = "";
    cb.disabled = true;
    if (!member) { return; }
    if (!online) { $("sms-text").textContent = SMS_OFFLINE; return; }
    $("sms-text").textContent = "memuat… / loading…";
    try {
      const s = await WB.api("GET", smsPath());
      if (seq === smsSeq) { showSms(s); }
    } catch (err) {
      if (seq !== smsSeq) { return; }
      $("sms-text").textContent = "";
      WB.showError("sms-error", err);
      if (err.status === 503) { setOnline(false); }
    }
  }

  async function switchSms() {
    const cb = $("sms-opt-in");
    const want = cb.checked;
    const seq = ++smsSeq;
    cb.disabled = true;
    WB.showError("sms-error", null);
    try {
      const s = await WB.api("PUT", smsPath(), { sms_opt_in: want });
      if (seq === smsSeq) { showSms(s); }
    } catch (err) {
      if (seq !== smsSeq) { return; }
      cb.checked = !want;  // as the central API still has it
      cb.disabled = !online;
      WB.showError("sms-error", err);
      if (err.status === 503) { setOnline(false); }
    }
  }

  // ---- choosing a member ----

  function choose(m) {
    member = m;
    $("m-selected").dataset.member = m.member_no;
    const cards = m.cards && m.cards.length ? " · kartu / cards: " + m.cards.join(", ") : "";
    $("m-selected").textContent = m.name + " (" + m.member_no + ")" + cards;
    $("m-results").textContent = "";
    $("pin-slip").hidden = true;
    WB.showError("pin-error", null);
    WB.showError("card-error", null);
    showCard();
    loadSms();
  }

  let searchSeq = 0;
  async function search() {
    const q = $("m-q").value.trim();
    const seq = ++searchSeq;
    const box = $("m-results");
    if (!q) { box.textContent = ""; return; }
    try {
      const found = await WB.api("GET", "/members?q=" + encodeURIComponent(q));
      if (seq !== searchSeq) { return; }
      box.textContent = "";
      found.forEach((m) => {
        const b = WB.el("button", { type: "button", "data-member": m.member_no }, m.name + " (" + m.member_no + ")");
        b.addEventListener("click", () => choose(m));
        box.append(b);
      });
      if (!found.length) { box.append(WB.el("p", { class: "muted" }, "Tidak ditemukan / Not found")); }
    } catch (err) {
      WB.showError(box, err);
    }
  }

  // ---- card taps (the scales' live streams) ----

  function listen(scaleId) {
    const source = new EventSource("/petugas/api/scales/" + encodeURIComponent(scaleId) + "/live");
    source.onmessage = (ev) => {
      const v = JSON.parse(ev.data);
      if (v.card) { card = v.card; showCard(); }
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) { loadState(false).catch(() => {}); }
    };
    sources.push(source);
  }

  function showCard() {
    const box = $("card-box");
    if (!card) {
      box.dataset.state = "none";
    } else if (card.member_no) {
      box.dataset.state = "taken";
      $("card-text").textContent = "Kartu / Card " + card.uid + ": milik / held by " +
        card.member_name + " (" + card.member_no + ")";
    } else {
      box.dataset.state = "new";
      $("card-text").textContent = "Kartu baru / New card " + card.uid +
        (member ? ": ikat ke / bind to " + member.name + " (" + member.member_no + ")?" : ": pilih nasabah dulu / choose a member first");
    }
    $("card-box").dataset.uid = card ? card.uid : "";
    updateButtons();
  }

  async function bindCard() {
    if (!member || !card || card.member_no) { return; }
    $("card-bind").disabled = true;
    WB.showError("card-error", null);
    try {
      const m = await WB.api("POST", "/members/" + encodeURIComponent(member.member_no) + "/cards", { uid: card.uid });
      card = { uid: card.uid, member_no: m.member_no, member_name: m.name };
      choose(m);
    } catch (err) {
      WB.showError("card-error", err);
      if (err.status === 503) { setOnline(false); }
    } finally {
      updateButtons();
    }
  }

  // ---- PINs ----

  async function issuePin(reset) {
    if (!member) { return; }
    WB.showError("pin-error", null);
    const path = "/members/" + encodeURIComponent(member.member_no) + "/pin";
    let slip;
    if (reset) {
      slip = await WB.confirm({
        title: "Setel ulang PIN? / Reset the PIN?",
        rows: [["Nasabah / Member", member.name + " (" + member.member_no + ")"],
               ["Akibat / Effect", "PIN lama tidak berlaku; nasabah keluar dari semua perangkat / the old PIN stops working; the member is signed out everywhere"]],
        danger: "Setel ulang / Reset",
        action: () => WB.api("POST", path, { reset: true }),
      });
      if (!slip) { return; }
    } else {
      $("pin-issue").disabled = true;
      try {
        slip = await WB.api("POST", path, { reset: false });
      } catch (err) {
        WB.showError("pin-error", err);
        if (err.status === 503) { setOnline(false); }
        updateButtons();
        return;
      }
    }
    showSlip(slip);
    updateButtons();
  }

  function showSlip(s) {
    $("slip-no").textContent = s.member_no;
    $("slip-name").textContent = s.name;
    $("slip-username").textContent = s.username;
    $("pin-value").textContent = s.pin;
    $("slip-url").textContent = s.login_url;
    $("slip-print").href = s.slip_url;
    $("pin-slip").hidden = false;
  }

  function updateButtons() {
    const chosen = member !== null;
    $("card-bind").disabled = !(online && chosen && card && !card.member_no);
    $("pin-issue").disabled = !(online && chosen);
    $("pin-reset").disabled = !(online && chosen);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("sync-refresh").addEventListener("click", refresh);
    $("reg-form").addEventListener("submit", register);
    $("reg-sms").addEventListener("change", phoneForSms);
    $("sms-opt-in").addEventListener("change", switchSms);
    $("m-q").addEventListener("input", search);
    $("m-q").addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter") { return; }
      ev.preventDefault();
      const only = $("m-results").querySelectorAll("button[data-member]");
      if (only.length === 1) { only[0].click(); }
    });
    $("card-bind").addEventListener("click", bindCard);
    $("pin-issue").addEventListener("click", () => issuePin(false));
    $("pin-reset").addEventListener("click", () => issuePin(true));
    loadState(true).then(proposeNumber).catch((err) => WB.showError("sync-msg", err));
    setInterval(() => loadState(false).catch(() => {}), 30000);
  });
  window.addEventListener("pagehide", () => sources.forEach((s) => s.close()));
})();
