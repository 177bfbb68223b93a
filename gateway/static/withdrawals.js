// The withdrawals page (gateway/templates/withdrawals.html): the bank's requests by status, and
// approve / refuse (with a reason) / pay (cash, or a transfer with its reference), each with its
// receipt. The gateway decides what is allowed (gateway/http/attendant/withdrawal_desk.py): this
// script shows its list and its answers. A payment queued while the central API is unreachable is
// NOT paid: the page says so in red, and cash is handed over only once it says "dibayar".
"use strict";

(function () {
  const WB = window.WB;
  const list = document.getElementById("withdrawals");
  const error = document.getElementById("wd-error");
  const synced = document.getElementById("wd-synced");
  const result = document.getElementById("wd-result");
  const POLL_MS = 5000;
  let filter = "requested";
  let rows = [];

  function setFilter(name) {
    filter = name;
    document.querySelectorAll(".filters button").forEach((b) => {
      b.setAttribute("aria-pressed", b.dataset.filter === name ? "true" : "false");
    });
    render();
  }

  function shownUnder(w) {
    // cancelled ones are filed with the refused: neither will be paid
    if (w.shown_status === "cancelled") { return "rejected"; }
    return w.shown_status;
  }

  function card(w) {
    const item = WB.el("article", { class: "wd", "data-withdrawal-id": String(w.id), "data-status": w.shown_status });
    const top = WB.el("div", { class: "wd-top" });
    top.append(WB.el("span", { class: "wd-who" }, w.member_name + " (" + w.member_no + ")"),
      WB.el("span", { class: "wd-amount" }, WB.rupiah(w.amount_idr)));
    item.append(top);
    let meta = w.method_text + " · " + WB.time(w.requested_at);
    if (w.destination) { meta += " · " + w.destination; }
    item.append(WB.el("div", { class: "wd-meta" }, meta));
    if (w.available_idr !== null && w.available_idr !== undefined) {
      item.append(WB.el("div", { class: "wd-meta available" },
        "Dapat ditarik lagi / still available: " + WB.rupiah(w.available_idr)));
    }
    const status = WB.el("div", {});
    status.append(WB.el("span", { class: "badge status " + w.shown_status }, w.status_text));
    if (w.dual_control) { status.append(" ", WB.el("span", { class: "badge dual" }, "2 petugas / 2 attendants")); }
    item.append(status);
    let stepClass = "next-step";
    if (w.second_person) { stepClass += " second"; }
    if (w.do_not_pay_out) { stepClass += " hold"; }
    item.append(WB.el("p", { class: stepClass }, w.next_step));
    if (w.refused) {
      // "persetujuan / approval": each name in its own language's half of the sentence
      const [named, english] = w.refused.action_text.split(" / ");
      item.append(WB.el("p", { class: "error refused" },
        named + " ditolak / " + (english || named) + " refused: " + w.refused.error));
    }
    const actions = WB.el("div", { class: "actions" });
    if (w.may.includes("approve")) { actions.append(button("approve", "Setujui", "Approve", "primary", w)); }
    if (w.may.includes("pay")) { actions.append(button("pay", "Bayar", "Pay", "primary", w)); }
    if (w.may.includes("reject")) { actions.append(button("reject", "Tolak", "Refuse", "danger", w)); }
    const receipt = WB.el("a", { class: "button receipt", href: w.receipt_url }, "Struk");
    receipt.append(WB.el("small", { class: "en" }, "Receipt"));
    actions.append(receipt);
    item.append(actions);
    return item;
  }

  function button(action, text, english, kind, w) {
    const b = WB.el("button", { type: "button", class: kind, "data-action": action, title: english }, text);
    b.append(WB.el("small", { class: "en" }, english));
    b.addEventListener("click", () => act(action, w));
    return b;
  }

  function render() {
    const counts = { requested: 0, approved: 0, queued: 0, paid: 0, rejected: 0 };
    rows.forEach((w) => { counts[shownUnder(w)] = (counts[shownUnder(w)] || 0) + 1; });
    Object.entries(counts).forEach(([k, n]) => {
      const c = document.querySelector('[data-count="' + k + '"]');
      if (c) { c.textContent = String(n); }
    });
    const shown = rows.filter((w) => shownUnder(w) === filter);
    list.replaceChildren(...shown.map(card));
    if (!shown.length) { list.append(WB.el("p", { class: "muted", id: "wd-empty" }, "Tidak ada / None")); }
  }

  async function load() {
    try {
      const data = await WB.api("GET", "/withdrawals");
      rows = data.withdrawals;
      let text = data.synced_at ? "Data per / as of " + WB.time(data.synced_at) : "Belum ada data / no data yet";
      if (data.online === false) { text += " · API pusat offline: salinan gateway / central API offline"; }
      if (data.queued) { text += " · " + data.queued + " antri / queued"; }
      synced.textContent = text;
      WB.showError(error, null);
      render();
    } catch (err) {
      WB.showError(error, err);
    }
  }

  function rowsOf(w) {
    const out = [
      ["Nasabah / Member", w.member_name + " (" + w.member_no + ")"],
      ["Jumlah / Amount", WB.rupiah(w.amount_idr)],
      ["Cara / Method", w.method_text],
    ];
    if (w.destination) { out.push(["Tujuan / To", w.destination]); }
    if (w.available_idr !== null && w.available_idr !== undefined) {
      out.push(["Dapat ditarik lagi / still available", WB.rupiah(w.available_idr)]);
    }
    return out;
  }

  function dialogFor(action, w) {
    if (action === "approve") {
      return { title: "Setujui penarikan? / Approve?", rows: rowsOf(w), confirmText: "Setujui / Approve" };
    }
    if (action === "reject") {
      return { title: "Tolak penarikan? / Refuse?", rows: rowsOf(w), danger: "Tolak / Refuse",
               reasonRequired: true, reasonLabel: "Alasan penolakan / Reason" };
    }
    const cash = w.method === "cash";
    return {
      title: cash ? "Bayar tunai? / Pay in cash?" : "Catat transfer? / Record the transfer?",
      text: cash ? "Serahkan uang setelah layar menyatakan \"dibayar\". / Hand over the cash once it says \"paid\"."
                 : "Masukkan nomor referensi transfer. / Enter the transfer's reference.",
      rows: rowsOf(w),
      confirmText: "Bayar / Pay",
      reasonRequired: !cash,
      reasonLabel: "No. referensi transfer / Transfer reference",
    };
  }

  function show(answer, action) {
    const w = answer.withdrawal;
    document.getElementById("wd-result-text").textContent = answer.message;
    let hold = "";
    if (w.do_not_pay_out) {
      hold = w.next_step;
      document.getElementById("wd-result-text").textContent =
        "Pembayaran dicatat di gateway, dikirim saat API pusat terjangkau / " +
        "The payment is kept on the gateway and sent when the central API is back.";
    }
    else if (action === "pay" && w.status === "paid" && w.method === "cash") {
      hold = "";
      document.getElementById("wd-result-text").textContent =
        "Dibayar / paid: serahkan " + WB.rupiah(w.amount_idr) + " kepada " + w.member_name + " / hand it over";
    }
    document.getElementById("wd-result-hold").textContent = hold;
    result.classList.toggle("hold", Boolean(hold));
    result.dataset.queued = answer.queued ? "yes" : "no";
    document.getElementById("wd-result-receipt").setAttribute("href", w.receipt_url);
    result.classList.add("show");
    result.scrollIntoView({ block: "nearest" });
  }

  async function act(action, w) {
    const opts = dialogFor(action, w);
    opts.action = async (answer) => {
      const body = action === "reject" ? { reason: answer.reason }
        : action === "pay" ? { payout_ref: answer.reason || null } : {};
      return WB.api("POST", "/withdrawals/" + w.id + "/" + action, body);
    };
    const answer = await WB.confirm(opts);
    if (!answer) { return; }
    show(answer, action);
    await load();
  }

  document.querySelectorAll(".filters button").forEach((b) => {
    b.addEventListener("click", () => setFilter(b.dataset.filter));
  });
  document.getElementById("wd-refresh").addEventListener("click", load);
  document.getElementById("wd-result-close").addEventListener("click", () => result.classList.remove("show"));
  load();
  setInterval(load, POLL_MS);
})();
