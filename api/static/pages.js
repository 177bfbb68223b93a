// The pages' charts and map: Chart.js and Leaflet served from node_modules (no CDN).
// Data comes from the page itself (<script id="page-data" type="application/json">).
(function () {
  "use strict";
  wteForm();
  var el = document.getElementById("page-data");
  if (!el) return;
  var data = JSON.parse(el.textContent || "{}");
  var palette = ["#1d6b34", "#2563eb", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#65a30d",
                 "#db2777", "#4b5563", "#ca8a04", "#0f766e", "#7c3aed"];
  var kgFormat = new Intl.NumberFormat(data.locale || "id-ID", { maximumFractionDigits: 1 });

  function color(i) { return palette[i % palette.length]; }

  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return null;
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    return new Chart(canvas, config);
  }

  function unitTicks(unit) {  // kg or t: the one unit the server chose for the chart
    return { callback: function (v) { return kgFormat.format(v) + " " + (unit || "kg"); } };
  }

  if (data.categories) {  // the citizen page: deposits by category
    chart("chart-categories", {
      type: "doughnut",
      data: {
        labels: data.categories.labels,
        datasets: [{ label: data.categories.title, data: data.categories.kg,
                     backgroundColor: data.categories.kg.map(function (_, i) { return color(i); }) }]
      },
      options: { plugins: { legend: { position: "bottom" } } }
    });
  }

  if (data.months) {  // DLH: tonnage by month (stacked by category)
    chart("chart-months", {
      type: "bar",
      data: {
        labels: data.months.labels,
        datasets: data.months.datasets.map(function (d, i) {
          return { label: d.label, data: d.values, backgroundColor: color(i) };
        })
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, ticks: unitTicks(data.months.unit) } },
                 plugins: { legend: { position: "bottom" } } }
    });
  }

  if (data.kecamatan) {  // DLH: tonnage by kecamatan
    chart("chart-kecamatan", {
      type: "bar",
      data: {
        labels: data.kecamatan.labels,
        datasets: [{ label: data.kecamatan.title, data: data.kecamatan.values, backgroundColor: color(0) }]
      },
      options: { indexAxis: "y", scales: { x: { ticks: unitTicks(data.kecamatan.unit) } }, plugins: { legend: { display: false } } }
    });
  }

  // DLH: an estimate by category, its central figure as a bar and its low..high range beside it
  (data.impactCharts || []).forEach(function (c, n) {
    chart("chart-impact-" + n, {
      type: "bar",
      data: {
        labels: c.labels,
        datasets: [
          // over each other (not side by side): the range a translucent box across the bar's end
          { label: c.centralLabel, data: c.central, backgroundColor: color(n), grouped: false, order: 1 },
          { label: c.rangeLabel, data: c.range, backgroundColor: color(n) + "55", borderColor: "#1b2b1b",
            borderWidth: 1, grouped: false, order: 0 }
        ]
      },
      // the unit is in the title (long units crowd the ticks); every category labelled
      options: { indexAxis: "y", scales: { x: { ticks: { callback: function (v) { return kgFormat.format(v); } } },
                                           y: { ticks: { autoSkip: false } } },
                 plugins: { title: { display: true, text: c.title }, legend: { position: "bottom" } } }
    });
  });

  // A definition opens on tap or keyboard (it is a <details>) and on hover (a mouse over it);
  // one opened by a tap, click or key stays open when the mouse leaves. Pointer events, so a
  // tap's emulated mouse events do not open it just before its click closes it again.
  Array.prototype.forEach.call(document.querySelectorAll("details.def"), function (d) {
    var pinned = false;
    var hovered = false;
    d.querySelector("summary").addEventListener("click", function (e) {
      // a click on one the mouse opened keeps it open; a second click closes it
      if (hovered && d.open && !pinned) { e.preventDefault(); pinned = true; return; }
      pinned = !d.open;
    });
    d.addEventListener("pointerenter", function (e) {
      if (e.pointerType !== "mouse" || d.open) return;
      hovered = true;
      d.open = true;
    });
    d.addEventListener("pointerleave", function (e) {
      if (e.pointerType !== "mouse") return;
      if (hovered && !pinned) d.open = false;
      hovered = false;
    });
  });

  var mapEl = document.getElementById("tps-map");
  var mapNote = document.getElementById("map-note");
  function plainMap(map, layer, why) {  // markers on a blank background, and say so
    if (layer && map) map.removeLayer(layer);
    if (map && map.attributionControl) map.attributionControl.remove();
    mapEl.classList.add("plain");
    mapEl.setAttribute("data-base-map", "none");
    if (mapNote) mapNote.textContent = why || "";
  }
  if (mapEl && data.tps && typeof L !== "undefined") {
    var tiles = data.tiles || {};
    var text = data.mapText || {};
    var map = L.map(mapEl, { attributionControl: !!tiles.url, zoomSnap: 0.25 });
    if (tiles.url) {
      // The base map when the browser reaches the tile server; the plain map when no tile of
      // the first view loads (refused, offline) or none has come within 8 s (a silent network).
      var layer = L.tileLayer(tiles.url, { attribution: tiles.attribution || "", maxZoom: 19 });
      var loaded = 0;
      var settled = false;
      var settle = function (ok) {
        if (settled) return;
        settled = true;
        if (ok) mapEl.setAttribute("data-base-map", "tiles");
        else plainMap(map, layer, text.unreachable);
      };
      layer.on("tileload", function () { loaded += 1; settle(true); });
      layer.on("load", function () { settle(loaded > 0); });
      setTimeout(function () { settle(loaded > 0); }, 8000);
      layer.addTo(map);
    } else {
      plainMap(map, null, text.noTiles);
    }
    var points = [];
    var byKecamatan = {};
    data.tps.forEach(function (t) {
      if (t.lat === null || t.lon === null) return;
      var fill = t.fill === null ? 0 : t.fill;
      var stroke = t.offline ? "#6b7280" : (t.alert ? "#b45309" : "#1d6b34");
      var marker = L.circleMarker([t.lat, t.lon], {
        radius: 9, color: stroke, weight: 3, fillColor: t.offline ? "#d1d5db" : (fill >= t.raise ? "#f59e0b" : "#4ade80"),
        fillOpacity: 0.9
      }).addTo(map);
      marker.bindTooltip(t.name + " · " + Math.round(fill * 100) + " %" + (t.offline ? " · " + data.offlineText : ""),
                         { permanent: true, direction: "auto", offset: [10, 0] });
      points.push([t.lat, t.lon]);
      if (t.kecamatan) (byKecamatan[t.kecamatan] = byKecamatan[t.kecamatan] || []).push([t.lat, t.lon]);
    });
    Object.keys(byKecamatan).forEach(function (name) {  // the kecamatan's name near its TPS
      var pts = byKecamatan[name];
      var lat = pts.reduce(function (s, p) { return s + p[0]; }, 0) / pts.length;
      var lon = pts.reduce(function (s, p) { return s + p[1]; }, 0) / pts.length;
      L.tooltip({ permanent: true, direction: "center", className: "kec-label", offset: [0, -22] })
        .setLatLng([lat, lon]).setContent(name).addTo(map);
    });
    if (points.length === 1) map.setView(points[0], 14);
    else if (points.length > 1) map.fitBounds(points, { padding: [130, 40] });  // [x, y]: room for the labels
    else map.setView([-2.5, 118], 4);  // Indonesia
  }

  // DLH: the PLTSa scenario form. A plain GET with the page's session cookie (it changes
  // nothing: no CSRF token); the server writes every figure (id-ID, central first with its
  // range), this only puts its text in the table, or a 422's reason next to its field.
  // Without JavaScript the form reloads /dlh with the same figures.
  function wteForm() {
    var form = document.getElementById("wte-form");
    if (!form || !window.fetch || !window.URLSearchParams) return;
    var result = document.getElementById("wte-result");
    var warnings = document.getElementById("wte-warnings");
    function clearErrors() {
      Array.prototype.forEach.call(form.querySelectorAll("[data-error-for]"), function (p) { p.textContent = ""; });
      Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (i) { i.removeAttribute("aria-invalid"); });
    }
    function refuse(field, message) {
      var p = form.querySelector('[data-error-for="' + (field || "") + '"]') || document.getElementById("wte-error-form");
      p.textContent = message;
      var input = field ? form.elements.namedItem(field) : null;
      if (input && input.setAttribute) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    }
    function show(shown) {
      Array.prototype.forEach.call(result.querySelectorAll("[data-wte]"), function (cell) {
        cell.textContent = shown[cell.getAttribute("data-wte")] || "–";
      });
      var list = warnings.querySelector("ul");
      list.textContent = "";
      (shown.warnings || []).forEach(function (line) {
        var li = document.createElement("li");
        li.textContent = line;
        list.appendChild(li);
      });
      warnings.hidden = !(shown.warnings || []).length;
      result.hidden = false;
    }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      clearErrors();
      var params = new URLSearchParams();
      Array.prototype.forEach.call(form.elements, function (input) {
        // the tonnage always (empty: the server says it is required), the others when filled
        if (input.name && (input.value !== "" || input.name === "tonnes_per_day")) params.append(input.name, input.value);
      });
      var lang = document.documentElement.getAttribute("lang");
      if (lang) params.append("lang", lang);
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      fetch(form.getAttribute("data-endpoint") + "?" + params.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) {
          return r.json().then(function (body) { return { status: r.status, body: body }; });
        })
        .then(function (answer) {
          if (answer.status === 200) show(answer.body.shown);
          else if (answer.status === 422) refuse(answer.body.field, answer.body.detail);
          else refuse(null, form.getAttribute("data-failed") + " (HTTP " + answer.status + ")");
        })
        .catch(function () { refuse(null, form.getAttribute("data-failed")); })
        .then(function () { button.disabled = false; });
    });
  }
})();
