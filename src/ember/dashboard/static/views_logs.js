// The Logs pages (every node's files, one file's last lines) and Metrics
// (Grafana's link when the head has one, and the built-in charts).
"use strict";
(function (E) {
  const h = E.h;

  E.views.logs = {
    title: "Logs",
    mount(el) {
      const box = h("div", { id: "logs-nodes" });
      el.append(h("h1", {}, "Logs"), box);
      return {
        async tick() {
          const { nodes } = await E.api("/api/logs");
          const ids = Object.keys(nodes || {}).sort();
          box.replaceChildren(...(ids.length ? ids.map((id) => h("section", {},
            h("h3", {}, "Node ", E.nodeLink(id)),
            h("ul", { class: "files" }, nodes[id].map((f) =>
              h("li", {}, E.link(`/logs/${E.enc(id)}/${E.enc(f)}`, f, "mono"))))))
            : [h("p", { class: "muted" }, "No log files.")]));
        },
      };
    },
  };

  E.views.logFile = {
    title: "Log",
    mount(el, [node, file], kick) {
      const lines = h("select", { id: "log-lines", onchange: kick },
        ["100", "1000", "10000"].map((n) => h("option", { value: n, selected: n === "1000" }, n)));
      const pre = h("pre", { class: "log", id: "log-text" });
      el.append(h("h1", {}, h("span", { class: "mono" }, file)),
        h("div", { class: "filters" }, "Node ", E.nodeLink(node), " · last", lines, "lines"), pre);
      let first = true;
      return {
        async tick() {
          const q = new URLSearchParams({ node_id: node, filename: file, lines: lines.value });
          const text = await E.apiText("/api/logs/file?" + q);
          const atEnd = first || pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          if (pre.textContent !== text) pre.textContent = text;
          if (atEnd) pre.scrollTop = pre.scrollHeight;
          first = false;
        },
      };
    },
  };

  E.views.metrics = {
    title: "Metrics",
    mount(el) {
      const grafana = h("div", { id: "grafana" });
      const charts = E.historyCharts();
      const perNode = new E.LineChart("CPU by node", E.pct, [], { max: 100 });
      const perNodeMem = new E.LineChart("Memory used by node", E.bytes, []);
      el.append(h("h1", {}, "Metrics"), grafana, h("h2", {}, "Cluster, the last hour"), charts.el,
        h("h2", {}, "By node"), h("div", { class: "charts" }, perNode.el, perNodeMem.el));
      return {
        async tick() {
          const [g, m] = await Promise.all([
            E.api("/api/grafana"), E.api("/api/metrics/history?seconds=3600")]);
          grafana.replaceChildren(g.grafana_host
            ? h("div", {}, h("p", {}, h("a", { href: E.safeUrl(g.grafana_host), target: "_blank", rel: "noopener" },
              "Open Grafana"), " at ", h("span", { class: "mono" }, g.grafana_host)),
              h("ul", {}, (g.dashboards || []).map((d) => h("li", {},
                h("a", { href: E.safeUrl(d.url), target: "_blank", rel: "noopener" }, d.title)))))
            : h("p", { class: "muted" }, "No Grafana: start the head with --grafana-host=http://HOST:3000 " +
              "(and Prometheus scraping the cluster) to link its dashboards here. The charts below need neither."));
          charts.update(m);
          const nodes = m.nodes || {};
          const ids = Object.keys(nodes).sort();
          const series = ids.map((id) => ({ key: id, label: id.slice(0, 8) }));
          const pick = (field) => Object.fromEntries(ids.map((id) => [id, nodes[id][field] || []]));
          perNode.setSeries(series);
          perNodeMem.setSeries(series);
          const t = ids.length ? nodes[ids[0]].t || m.t : m.t;
          perNode.update(t, pick("cpu_percent"));
          perNodeMem.update(t, pick("mem_used"));
        },
        stop() { charts.destroy(); perNode.destroy(); perNodeMem.destroy(); },
      };
    },
  };
})(window.E);
