// The attendant pages' shared helpers, window.WB (gateway/templates/petugas_base.html loads it on
// every page, the login form too). Plain JavaScript, no libraries: everything comes from the
// gateway on the bank's LAN. Texts: Bahasa Indonesia first, English second.
//
//   WB.api(method, path, body?)   JSON; path "/petugas/..." as is, else under /petugas/api
//                                 ("/state" -> /petugas/api/state). Sends X-CSRF-Token. A non-2xx
//                                 throws WB.ApiError (.status, .message: the server's text, .data).
//                                 A 401 (session over) reloads the page: the login form.
//   WB.rupiah(n)                  "Rp1.234", "-Rp1.234"
//   WB.kg(grams)                  "1,25 kg", "0,50 kg", "1,255 kg": two decimals, three when the
//                                 grams need them (exact: wastebank/formats.py kg, the same rule)
//   WB.time(iso) / WB.date(iso)   "6 Des 2026 09.30 WIT" / "6 Des 2026", in the bank's zone
//   WB.clock(iso)                 "09.30"
//   WB.showError(el, err)         err's message in el (an element or its id); null clears it
//   WB.validate(form)             our own messages beside each field; true when all pass.
//                                 required (blank or spaces refused), minlength/maxlength,
//                                 min/max, pattern (data-pattern-message), and for whole
//                                 numbers data-kind="rupiah"|"grams"|"int" with data-min/data-max
//                                 (type="text" inputmode="numeric": "1e5" is refused, "100.000"
//                                 taken). The field's name: data-label or its <label>.
//   WB.int(input)                 a whole number typed as "100000" or "100.000"; null otherwise
//   WB.confirm({title, text, rows, danger, reasonRequired, reasonLabel, confirmText,
//               cancelText, action})
//                                 a dialog: rows [[label, value]...]; danger: the red button; a
//                                 required reason refused when blank, with a message. Resolves
//                                 {reason} (or what action({reason}) returns: an error it throws
//                                 is shown in the dialog, which stays open), null when closed.
//   WB.banner(status)             the frame's offline/backlog banner from a status object
//   WB.el(tag, attrs, text)       a new element
//   WB.pending                    API calls under way (tests wait for 0: the page is drawn)
"use strict";

(function () {
  const meta = (name) => {
    const m = document.querySelector('meta[name="' + name + '"]');
    return m ? m.getAttribute("content") : "";
  };
  const csrf = meta("csrf-token");
  const timeZone = meta("wb-timezone") || "Asia/Jakarta";
  const zone = meta("wb-zone") || "";
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"];
  const UNREACHABLE = "Gateway tidak terjangkau; periksa Wi-Fi / The gateway cannot be reached: check the Wi-Fi";

  class ApiError extends Error {
    constructor(status, message, data) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.data = data;
    }
  }

  // The server's message: {"detail": "..."} (every refusal of the endpoint), or a list of
  // {message} or {msg}; never the raw JSON.
  function detailOf(status, data) {
    const detail = data && data.detail;
    if (typeof detail === "string" && detail) { return detail; }
    if (Array.isArray(detail) && detail.length) {
      return detail.map((d) => (d && (d.message || d.msg)) || "").filter(Boolean).join("; ");
    }
    if (detail && typeof detail === "object" && detail.message) { return String(detail.message); }
    if (status === 403) { return "Tidak diizinkan / Not allowed (403)"; }
    if (status === 404) { return "Tidak ditemukan / Not found (404)"; }
    if (status === 429) { return "Terlalu sering; coba lagi sebentar / Too many tries: wait a moment (429)"; }
    if (status >= 500) { return "Kesalahan di gateway (" + status + "); coba lagi / Gateway error: try again"; }
    return "Permintaan ditolak (" + status + ") / Request refused";
  }

  async function api(method, path, body) {
    const url = path.startsWith("/petugas/") ? path : "/petugas/api" + (path.startsWith("/") ? "" : "/") + path;
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") { opts.headers["X-CSRF-Token"] = csrf; }
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let resp;
    let data = null;
    WB.pending += 1;
    try {
      try { resp = await fetch(url, opts); } catch (e) { throw new ApiError(0, UNREACHABLE, null); }
      try { data = await resp.json(); } catch (e) { data = null; }
    } finally { WB.pending -= 1; }
    if (resp.status === 401 && csrf) {  // the session ended (logout elsewhere, expired)
      window.location.reload();
      throw new ApiError(401, "Sesi berakhir; silakan masuk lagi / Session over: log in again", data);
    }
    if (!resp.ok) { throw new ApiError(resp.status, detailOf(resp.status, data), data); }
    return data;
  }

  const thousands = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ".");

  function rupiah(n) {
    if (n === null || n === undefined || Number.isNaN(Number(n))) { return "—"; }
    const v = Math.round(Number(n));
    return (v < 0 ? "-" : "") + "Rp" + thousands(Math.abs(v));
  }

  function kg(grams) {
    if (grams === null || grams === undefined || Number.isNaN(Number(grams))) { return "—"; }
    const g = Math.round(Number(grams));
    const whole = Math.floor(Math.abs(g) / 1000);
    let decimals = String(Math.abs(g) % 1000).padStart(3, "0");
    if (decimals.endsWith("0")) { decimals = decimals.slice(0, 2); }
    return (g < 0 ? "-" : "") + thousands(whole) + "," + decimals + " kg";
  }

  const partsFmt = new Intl.DateTimeFormat("en-GB", {
    timeZone, year: "numeric", month: "numeric", day: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });

  function parts(iso) {
    const d = iso instanceof Date ? iso : new Date(iso);
    if (Number.isNaN(d.getTime())) { return null; }
    const p = {};
    partsFmt.formatToParts(d).forEach((x) => { p[x.type] = x.value; });
    return p;
  }

  function date(iso) {
    const p = parts(iso);
    return p ? Number(p.day) + " " + MONTHS[Number(p.month) - 1] + " " + p.year : "—";
  }

  function clock(iso) {
    const p = parts(iso);
    return p ? p.hour + "." + p.minute : "—";
  }

  function time(iso) {
    const p = parts(iso);
    return p ? (date(iso) + " " + clock(iso) + (zone ? " " + zone : "")) : "—";
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v !== null && v !== undefined && v !== false) { node.setAttribute(k, v === true ? "" : v); }
    });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function messageOf(err) {
    if (!err) { return ""; }
    if (typeof err === "string") { return err; }
    if (err instanceof ApiError) { return err.message; }
    if (err instanceof TypeError) { return UNREACHABLE; }  // fetch failed
    return err.message || String(err);
  }

  function showError(target, err) {
    const node = typeof target === "string" ? document.getElementById(target) : target;
    if (!node) { return; }
    node.textContent = messageOf(err);
    if (!node.getAttribute("role")) { node.setAttribute("role", "alert"); }
  }

  // ---- our own validation (forms use novalidate) ----

  const INT = /^(\d+|\d{1,3}(\.\d{3})+)$/;

  function int(input) {
    const v = (input.value || "").trim().replace(/\s/g, "");
    return INT.test(v) ? Number(v.replace(/\./g, "")) : null;
  }

  function labelOf(input) {
    if (input.dataset.label) { return input.dataset.label; }
    const lab = input.id && document.querySelector('label[for="' + input.id + '"]');
    return lab ? lab.textContent.trim() : (input.name || "Isian / Field");
  }

  function problem(input) {
    const label = labelOf(input);
    const value = (input.value || "");
    const kind = input.dataset.kind;  // "int", "rupiah" or "grams": whole numbers only
    if (input.required && !value.trim()) { return label + ": wajib diisi / required"; }
    if (!value.trim()) { return null; }
    if (kind) {
      const n = int(input);
      if (n === null) {
        if (kind === "rupiah") { return label + ": jumlah harus bilangan bulat Rupiah / amount must be whole Rupiah"; }
        if (kind === "grams") { return label + ": berat harus bilangan bulat gram / weight must be whole grams"; }
        return label + ": harus bilangan bulat / must be a whole number";
      }
      const min = input.dataset.min, max = input.dataset.max;
      const show = (x) => (kind === "rupiah" ? rupiah(x) : thousands(x));
      if (min !== undefined && n < Number(min)) { return label + ": minimal " + show(min) + " / at least " + show(min); }
      if (max !== undefined && n > Number(max)) { return label + ": maksimal " + show(max) + " / at most " + show(max); }
      return null;
    }
    const v = input.validity;
    if (v.badInput || v.stepMismatch) { return label + ": harus bilangan bulat / must be a whole number"; }
    if (v.rangeUnderflow) { return label + ": minimal " + input.min + " / at least " + input.min; }
    if (v.rangeOverflow) { return label + ": maksimal " + input.max + " / at most " + input.max; }
    if (v.tooShort) { return label + ": minimal " + input.minLength + " karakter / at least " + input.minLength + " characters"; }
    if (v.tooLong) { return label + ": maksimal " + input.maxLength + " karakter / at most " + input.maxLength + " characters"; }
    if (v.typeMismatch || v.patternMismatch) {
      return input.dataset.patternMessage || (label + ": format tidak sah / invalid format");
    }
    return null;
  }

  function fieldError(input) {
    let node = input.id && document.getElementById(input.id + "-error");
    if (!node) {
      node = el("p", { class: "field-error", id: input.id ? input.id + "-error" : null, "aria-live": "polite" });
      input.insertAdjacentElement("afterend", node);
      if (node.id) { input.setAttribute("aria-describedby", node.id); }
    }
    return node;
  }

  function validate(form) {
    let first = null;
    Array.from(form.elements).forEach((input) => {
      if (!input.willValidate || input.type === "hidden" || input.disabled) { return; }
      const msg = problem(input);
      const existing = input.id && document.getElementById(input.id + "-error");
      if (msg) {
        fieldError(input).textContent = msg;
        input.setAttribute("aria-invalid", "true");
        if (!first) { first = input; }
      } else {
        if (existing) { existing.textContent = ""; }
        input.removeAttribute("aria-invalid");
      }
    });
    if (first) { first.focus(); }
    return first === null;
  }

  // ---- the confirm dialog ----

  function confirm(opts) {
    const o = opts || {};
    return new Promise((resolve) => {
      const dlg = el("dialog", { id: "wb-confirm", "aria-labelledby": "wb-confirm-title" });
      const form = el("form", { method: "dialog", novalidate: true });
      form.append(el("h2", { id: "wb-confirm-title" }, o.title || "Yakin? / Are you sure?"));
      if (o.text) { form.append(el("p", {}, o.text)); }
      if (o.rows && o.rows.length) {
        const dl = el("dl", { class: "kv", id: "wb-confirm-rows" });
        o.rows.forEach(([k, v]) => { dl.append(el("dt", {}, k), el("dd", {}, v)); });
        form.append(dl);
      }
      let reason = null;
      if (o.reasonRequired || o.reason) {
        form.append(el("label", { for: "wb-confirm-reason" }, o.reasonLabel || "Alasan / Reason"));
        reason = el("textarea", { id: "wb-confirm-reason", rows: "3", maxlength: "500" });
        form.append(reason);
      }
      const error = el("p", { class: "error", id: "wb-confirm-error", role: "alert" });
      form.append(error);
      const ok = el("button", { type: "submit", id: "wb-confirm-ok", class: o.danger ? "danger" : "primary" },
        o.confirmText || (typeof o.danger === "string" ? o.danger : "Ya / Yes"));
      const no = el("button", { type: "button", id: "wb-confirm-cancel" }, o.cancelText || "Tutup / Close");
      const actions = el("div", { class: "actions" });
      actions.append(ok, no);
      form.append(actions);
      dlg.append(form);
      document.body.append(dlg);
      let settled = false;
      const finish = (value) => {
        if (settled) { return; }
        settled = true;
        if (dlg.open) { dlg.close(); }
        dlg.remove();
        resolve(value);
      };
      no.addEventListener("click", () => finish(null));
      dlg.addEventListener("cancel", (e) => { e.preventDefault(); finish(null); });  // Escape
      form.addEventListener("submit", async (e) => {
        e.preventDefault();  // never the dialog's silent close: we decide
        const text = reason ? reason.value.trim() : "";
        if (o.reasonRequired && !text) {
          error.textContent = "Alasan wajib diisi / A reason is required";
          reason.setAttribute("aria-invalid", "true");
          reason.focus();
          return;
        }
        const answer = { reason: text };
        if (!o.action) { finish(answer); return; }
        ok.disabled = true;
        error.textContent = "";
        try { finish(await o.action(answer)); }
        catch (err) { showError(error, err); ok.disabled = false; }
      });
      dlg.showModal();
      (reason || ok).focus();
    });
  }

  // ---- the frame's banner ----

  function banner(v) {
    const b = document.getElementById("banner");
    if (!b) { return; }
    const parts = [];
    if (v && v.unreachable) { parts.push(UNREACHABLE + "."); }
    if (v && v.broker_connected === false) {
      parts.push("Koneksi ke server terputus: setoran disimpan di gateway dan dikirim nanti / " +
        "No connection to the server: deposits are kept on the gateway and sent later.");
    }
    if (v && v.outbox_depth > 0) {
      parts.push(v.outbox_depth + " pesan menunggu dikirim / waiting to be sent.");
    }
    if (v && v.central_online === false) {
      parts.push("API pusat tidak terjangkau: data dari salinan gateway / " +
        "Central API unreachable: the gateway's copy is shown.");
    }
    if (v && v.pending_voids > 0) {
      parts.push(v.pending_voids + " pembatalan menunggu / voids pending.");
    }
    b.textContent = parts.join(" ");
    b.classList.toggle("show", parts.length > 0);
  }

  // Pages without a live stream of their own keep the banner current from /petugas/api/status
  // (the weighing page sets data-live-banner on <body> and feeds it from its stream).
  async function pollStatus() {
    if (document.body.dataset.liveBanner) { return; }
    try { banner(await api("GET", "/status")); }
    catch (e) { if (e.status === 0) { banner({ unreachable: true }); } }
  }

  const WB = { api, ApiError, rupiah, kg, time, date, clock, el, showError, validate, int, confirm,
               banner, zone, timeZone, csrf, pending: 0 };
  window.WB = WB;

  if (csrf && document.getElementById("banner")) {
    document.addEventListener("DOMContentLoaded", () => {
      pollStatus();
      setInterval(pollStatus, 15000);
    });
  }
})();
