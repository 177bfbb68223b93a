// The day page (gateway/templates/day.html): a day's totals from the ledger (deposits per
// category, withdrawals paid, sales, transfers, residue, cash), its close with the cash counted
// (the difference shown before confirming), and the day sheet (A4 print, or the 58 mm receipt
// "hari"). Closing needs the central API: the gateway never queues it.
"use strict";

(function () {
  const WB = window.WB;
  const $ = (id) => document.getElementById(id);
  const METHOD = { cash: "Tunai / Cash", bank_transfer: "Transfer bank", ewallet: "Dompet digital" };
  let day = null;  // the central API's day, as the gateway gave it

  function rows(table, items) {
    const body = $(table).tBodies[0];
    body.replaceChildren();
    items.forEach((cells) => {
      const tr = WB.el("tr");
      cells.forEach((c, i) => tr.append(WB.el("td", i ? { class: "num" } : {}, c)));
      body.append(tr);
    });
    if (!items.length) {
      const tr = WB.el("tr");
      tr.append(WB.el("td", { class: "muted" }, "—"));
      body.append(tr);
    }
    return body;
  }

  function expectedWith(cash, opening) {
    // a first close: the float typed here instead of the preview's 0
    if (cash.opening_source === "entered" && opening !== null) {
      return cash.expected_idr - cash.opening_idr + opening;
    }
    return cash.expected_idr;
  }

  function diffClass(n) { return n < 0 ? "diff-neg" : n > 0 ? "diff-pos" : "diff-zero"; }

  function drawCash(d) {
    const dl = $("day-cash");
    dl.replaceChildren();
    const cash = d.cash;
    const add = (k, v, id, cls) => { dl.append(WB.el("dt", {}, k), WB.el("dd", { id, class: cls || null }, v)); };
    if (!cash) {
      dl.append(WB.el("dt", {}, d.closable_why || "—"), WB.el("dd", {}, ""));
      return;
    }
    add("Saldo awal / Opening" + (cash.opening_source === "entered" ? " *" : ""), WB.rupiah(cash.opening_idr), "cash-opening");
    add("Masuk tunai (penjualan) / Cash in", WB.rupiah(cash.in_idr), "cash-in");
    add("Keluar tunai (penarikan) / Cash out", WB.rupiah(cash.out_idr), "cash-out");
    add("Seharusnya di laci / Expected", WB.rupiah(cash.expected_idr), "cash-expected");
    const close = d.close;
    if (close) {
      add("Dihitung / Counted", WB.rupiah(close.counted_cash_idr), "cash-counted");
      add("Selisih / Difference", WB.rupiah(close.difference_idr), "cash-difference", diffClass(close.difference_idr));
      if (close.note) { add("Catatan / Note", close.note, "cash-note"); }
    }
    dl.append(WB.el("dt", { class: "small" }, "Periode kas / Cash period"),
      WB.el("dd", { class: "small" }, WB.time(cash.cash_from) + " – " + WB.time(cash.cash_until)));
  }

  function draw(v) {
    day = v.day;
    const d = day;
    $("day-title").textContent = d.bank_name + " · " + WB.date(d.start) + " (" + d.zone_label + ")";
    $("day-fetched").textContent = (v.online ? "Dari buku besar / From the ledger: " : "Salinan / Copy: ") + WB.time(v.fetched_at);
    WB.showError("day-error", v.message || null);
    const dep = d.deposits.map((r) => [r.category_name, String(r.count), WB.kg(r.grams), WB.rupiah(r.amount_idr)]);
    const body = rows("day-deposits", dep);
    const t = d.deposits_total;
    const sum = WB.el("tr", { class: "sum", id: "deposits-total" });
    [ "Jumlah / Total", String(t.count), WB.kg(t.grams), WB.rupiah(t.amount_idr) ].forEach((c, i) => {
      sum.append(WB.el("td", i ? { class: "num" } : {}, c));
    });
    body.append(sum);
    $("day-voided").textContent = d.voided.count ? d.voided.count + " setoran dibatalkan (" + WB.kg(d.voided.grams) +
      ", " + WB.rupiah(d.voided.amount_idr) + ") tidak dihitung / voided, not counted" : "";
    const paid = d.withdrawals_paid.map((m) => [METHOD[m.method] || m.method, m.count + "x", WB.rupiah(m.amount_idr)]);
    rows("day-withdrawals", paid).parentElement.dataset.totalIdr = String(d.withdrawals_paid_total.amount_idr);
    const sales = d.sales.map((r) => [r.category_name, WB.kg(r.grams), WB.rupiah(r.amount_idr)]);
    d.sales_by_method.forEach((m) => sales.push([(METHOD[m.method] || m.method), m.count + "x", WB.rupiah(m.amount_idr)]));
    rows("day-sales", sales);
    const out = [];
    d.transfers_out.forEach((r) => out.push(["Ke induk / To induk: " + r.category_name, WB.kg(r.grams)]));
    d.transfers_in.forEach((r) => out.push(["Dari unit / From units: " + r.category_name, WB.kg(r.received_g)]));
    d.residue.forEach((r) => out.push(["Residu / Residue: " + r.category_name, WB.kg(r.grams)]));
    d.burned.forEach((r) => out.push(["Dibakar / Burned: " + r.category_name, WB.kg(r.grams)]));
    rows("day-out", out);
    rows("day-stock", d.stock.map((l) => [l.category_name, WB.kg(l.held_g)]));
    drawCash(d);
    const state = $("close-state");
    if (d.close) {
      state.textContent = "Hari ditutup oleh " + d.close.closed_by + " " + WB.time(d.close.closed_at) + " / Day closed";
      state.className = "closed";
    } else {
      state.textContent = d.closable ? "Belum ditutup / Not closed yet" : (d.closable_why || "");
      state.className = "";
    }
    $("close-section").hidden = !d.closable || !v.online;
    $("opening-row").hidden = !(d.cash && d.cash.opening_source === "entered");
    $("print-58").href = v.sheet_url;
  }

  async function load() {
    const date = $("day-date").value;
    try {
      draw(await WB.api("GET", "/day?date=" + encodeURIComponent(date)));
    } catch (err) {
      WB.showError("day-error", err);
    }
  }

  $("close-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    WB.showError("close-error", null);
    if (!WB.validate(e.target) || !day || !day.cash) { return; }
    const counted = WB.int($("counted-cash"));
    const openingShown = !$("opening-row").hidden && $("opening-cash").value.trim() !== "";
    const opening = openingShown ? WB.int($("opening-cash")) : null;
    const expected = expectedWith(day.cash, opening);
    const difference = counted - expected;
    const note = $("close-note").value.trim();
    const answer = await WB.confirm({
      title: "Tutup hari " + WB.date(day.start) + "? / Close the day?",
      rows: [
        ["Seharusnya / Expected", WB.rupiah(expected)],
        ["Dihitung / Counted", WB.rupiah(counted)],
        ["Selisih / Difference", WB.rupiah(difference)],
      ],
      text: difference === 0 ? "Kas cocok / Cash matches." :
        "Ada selisih: dicatat dan diaudit. Jelaskan di catatan. / A difference: recorded and audited; explain it in the note.",
      confirmText: "Tutup hari / Close",
      action: () => WB.api("POST", "/day/close", {
        date: day.local_date, counted_cash_idr: counted, note,
        opening_cash_idr: opening,
      }),
    });
    if (answer) {
      e.target.reset();
      draw(answer);
    }
  });

  $("day-reload").addEventListener("click", load);
  $("day-date").addEventListener("change", load);
  $("print-a4").addEventListener("click", () => window.print());
  load();
})();
