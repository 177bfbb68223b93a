// The pages' charts and map: Chart.js and Leaflet served from node_modules (no CDN).
// Data comes from the page itself (<script id="page-data" type="application/json">).
(function () {
  "use strict";
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

  var kgTicks = { callback: function (v) { return kgFormat.format(v) + " kg"; } };

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
          return { label: d.label, data: d.kg, backgroundColor: color(i) };
        })
      },
      options: { scales: { x: { stacked: true }, y: { stacked: true, ticks: kgTicks } },
                 plugins: { legend: { position: "bottom" } } }
    });
  }

  if (data.kecamatan) {  // DLH: tonnage by kecamatan
    chart("chart-kecamatan", {
      type: "bar",
      data: {
        labels: data.kecamatan.labels,
        datasets: [{ label: data.kecamatan.title, data: data.kecamatan.kg, backgroundColor: color(0) }]
      },
      options: { indexAxis: "y", scales: { x: { ticks: kgTicks } }, plugins: { legend: { display: false } } }
    });
  }

  var mapEl = document.getElementById("tps-map");
  if (mapEl && data.tps && typeof L !== "undefined") {
    var map = L.map(mapEl, { attributionControl: !!(data.tiles && data.tiles.url), zoomSnap: 0.25 });
    if (data.tiles && data.tiles.url) {
      L.tileLayer(data.tiles.url, { attribution: data.tiles.attribution || "", maxZoom: 19 }).addTo(map);
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
})();
