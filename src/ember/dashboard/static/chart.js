// A small canvas line chart: time on x, one or more series on y, a legend with
// the latest values.  new E.LineChart(title, fmt, series[, {max}]) -> .el;
// .update(t, values) with t in epoch ms and values {key: [number|null]}.
"use strict";
(function (E) {
  const COLORS = ["#d9480f", "#1c7ed6", "#2b8a3e", "#ae3ec9", "#f08c00", "#0c8599", "#5c7cfa"];
  const PAD = { l: 40, r: 8, t: 8, b: 20 };

  class LineChart {
    // series: [{key, label}]; fmt: value -> text; opts.max: a fixed top (100 for %)
    constructor(title, fmt, series, opts) {
      this.fmt = fmt;
      this.series = series.map((s, i) => ({ color: COLORS[i % COLORS.length], ...s }));
      this.opts = opts || {};
      this.t = [];
      this.values = {};
      this.canvas = E.h("canvas", { "data-points": "0" });
      this.legend = E.h("div", { class: "legend" });
      this.el = E.h("div", { class: "chart" }, E.h("div", { class: "title" }, title),
        this.legend, this.canvas);
      this.onResize = () => this.draw();
      window.addEventListener("resize", this.onResize);
    }

    setSeries(series) {
      this.series = series.map((s, i) => ({ color: COLORS[i % COLORS.length], ...s }));
    }

    update(t, values) {
      this.t = t || [];
      this.values = values || {};
      this.canvas.dataset.points = String(this.t.length);
      this.legend.replaceChildren(...this.series.map((s) => {
        const v = this.values[s.key] || [];
        const last = v.length ? v[v.length - 1] : null;
        const sw = E.h("span", { class: "swatch" });
        sw.style.background = s.color;
        return E.h("span", {}, sw, `${s.label} ${last === null ? "-" : this.fmt(last)}`);
      }));
      this.draw();
    }

    destroy() {
      window.removeEventListener("resize", this.onResize);
    }

    draw() {
      const c = this.canvas, dpr = window.devicePixelRatio || 1;
      const w = c.clientWidth, hgt = c.clientHeight;
      if (!w || !hgt) return; // not on screen
      c.width = Math.round(w * dpr);
      c.height = Math.round(hgt * dpr);
      const g = c.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, w, hgt);
      g.font = "11px system-ui, sans-serif";
      const t = this.t;
      let top = this.opts.max || 0;
      for (const s of this.series) {
        for (const v of this.values[s.key] || []) if (v !== null && v > top) top = v;
      }
      if (!this.opts.max) top = niceTop(top);
      // the y labels' column is as wide as its widest label
      let labelW = 0;
      for (let i = 0; i <= 4; i++) labelW = Math.max(labelW, g.measureText(this.fmt((top * i) / 4)).width);
      const x0 = Math.max(PAD.l, labelW + 10), x1 = w - PAD.r, y0 = hgt - PAD.b, y1 = PAD.t;
      // grid and y labels
      g.strokeStyle = "#e9ecef";
      g.fillStyle = "#667085";
      g.textAlign = "right";
      g.textBaseline = "middle";
      for (let i = 0; i <= 4; i++) {
        const y = y0 - ((y0 - y1) * i) / 4;
        g.beginPath(); g.moveTo(x0, y); g.lineTo(x1, y); g.stroke();
        g.fillText(this.fmt((top * i) / 4), x0 - 6, y);
      }
      if (t.length === 0) {
        g.textAlign = "center";
        g.fillText("no samples yet", (x0 + x1) / 2, (y0 + y1) / 2);
        return;
      }
      const tMin = t[0], tMax = Math.max(t[t.length - 1], tMin + 1);
      const X = (ms) => x0 + ((x1 - x0) * (ms - tMin)) / (tMax - tMin);
      const Y = (v) => y0 - ((y0 - y1) * v) / (top || 1);
      // x labels: first, middle, last
      g.textBaseline = "top";
      const sec = tMax - tMin < 10 * 60 * 1000; // a short span: show seconds
      g.textAlign = "left"; g.fillText(E.clock(tMin, sec), x0, y0 + 4);
      g.textAlign = "center"; g.fillText(E.clock((tMin + tMax) / 2, sec), (x0 + x1) / 2, y0 + 4);
      g.textAlign = "right"; g.fillText(E.clock(tMax, sec), x1, y0 + 4);
      g.lineWidth = 1.5;
      for (const s of this.series) {
        const v = this.values[s.key] || [];
        g.strokeStyle = s.color;
        g.beginPath();
        let pen = false;
        for (let i = 0; i < t.length && i < v.length; i++) {
          if (v[i] === null || v[i] === undefined) { pen = false; continue; }
          const x = X(t[i]), y = Y(v[i]);
          if (pen) g.lineTo(x, y); else g.moveTo(x, y);
          pen = true;
        }
        if (t.length === 1 && v.length && v[0] !== null) g.arc(X(t[0]), Y(v[0]), 1.5, 0, 7);
        g.stroke();
      }
    }
  }

  // 1, 2 or 5 times a power of ten (or of 1024 for big numbers), above v
  function niceTop(v) {
    if (!(v > 0)) return 1;
    const base = v >= 1024 ? 1024 : 10;
    const p = Math.pow(base, Math.floor(Math.log(v) / Math.log(base)));
    for (const m of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]) if (p * m >= v) return p * m;
    return v;
  }

  E.LineChart = LineChart;

  // The charts of /api/metrics/history: CPU, memory, disk, network, object store.
  E.historyCharts = function () {
    const charts = [
      new LineChart("CPU", E.pct, [{ key: "cpu_percent", label: "used" }], { max: 100 }),
      new LineChart("Memory", E.bytes, [{ key: "mem_used", label: "used" }, { key: "mem_total", label: "total" }]),
      new LineChart("Disk", E.bytes, [{ key: "disk_used", label: "used" }, { key: "disk_total", label: "total" }]),
      new LineChart("Network", E.rate, [{ key: "net_rx_bps", label: "received" }, { key: "net_tx_bps", label: "sent" }]),
      new LineChart("Object store", E.bytes, [
        { key: "object_store_used", label: "used" }, { key: "object_store_total", label: "total" },
        { key: "object_store_spilled", label: "spilled" }]),
    ];
    return {
      el: E.h("div", { class: "charts" }, charts.map((c) => c.el)),
      update: (m) => charts.forEach((c) => c.update(m.t, m)),
      destroy: () => charts.forEach((c) => c.destroy()),
    };
  };
})(window.E);
