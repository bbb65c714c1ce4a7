// The cluster pages: Overview, Nodes and one node's page.
// A view is {title, mount(el, params, kick) -> {tick: async fn, stop?: fn}}.
"use strict";
(function (E) {
  const h = E.h;
  const BYTES = new Set(["memory", "object_store_memory"]);

  function resourceCards(total, avail) {
    const out = [];
    for (const [k, t] of Object.entries(total || {}).sort()) {
      if (k.startsWith("node:") || k.includes("_group_")) continue;
      const used = t - ((avail || {})[k] || 0);
      const f = BYTES.has(k) ? E.bytes : E.num;
      out.push(E.card(k, `${f(used)} / ${f(t)}`, "used / total", t ? used / t : 0));
    }
    return out;
  }

  E.jobRows = function (jobs) {
    return E.table([
      ["Job", (j) => E.link("/jobs/" + E.enc(j.submission_id || j.job_id), j.submission_id || j.job_id, "mono")],
      ["Status", (j) => E.state(j.status)],
      ["Entrypoint", (j) => j.entrypoint || "-", "mono"],
      ["Started", (j) => E.time(j.start_time)],
      ["Ended", (j) => E.time(j.end_time)],
      ["Duration", (j) => E.duration(j.start_time, j.end_time)],
    ], jobs, "No jobs yet.");
  };

  E.views.overview = {
    title: "Overview",
    mount(el) {
      const cards = h("div", { class: "cards", id: "overview-cards" });
      const charts = E.historyCharts();
      const jobs = h("div", { id: "overview-jobs" });
      el.append(h("h1", {}, "Overview"), cards, h("h2", {}, "The last hour"), charts.el,
        h("h2", {}, "Recent jobs"), jobs);
      return {
        async tick() {
          const [c, m] = await Promise.all([
            E.api("/api/cluster"), E.api("/api/metrics/history?seconds=3600")]);
          const running = (c.tasks_by_state || {}).RUNNING || 0;
          const alive = (c.actors_by_state || {}).ALIVE || 0;
          cards.replaceChildren(
            E.card("Nodes", `${c.nodes_alive} alive`, `${c.nodes_dead} dead`),
            E.card("Running tasks", String(running),
              Object.entries(c.tasks_by_state || {}).map(([s, n]) => `${s} ${n}`).join(", ")),
            E.card("Live actors", String(alive),
              Object.entries(c.actors_by_state || {}).map(([s, n]) => `${s} ${n}`).join(", ")),
            ...resourceCards(c.resources_total, c.resources_available));
          charts.update(m);
          jobs.replaceChildren(E.jobRows(c.jobs || []));
          E.setStatus(`${c.session_name || ""} · ember ${c.ember_version || ""}`);
        },
        stop: charts.destroy,
      };
    },
  };

  E.views.nodes = {
    title: "Nodes",
    mount(el) {
      const box = h("div", { id: "nodes-table" });
      el.append(h("h1", {}, "Nodes"), box);
      return {
        async tick() {
          const { nodes } = await E.api("/api/nodes");
          box.replaceChildren(E.table([
            ["Node", (n) => [E.nodeLink(n.node_id), n.is_head ? h("span", { class: "muted" }, " (head)") : null]],
            ["IP", (n) => n.node_ip],
            ["State", (n) => [E.state(n.state), n.death_reason ? h("div", { class: "muted" }, n.death_reason) : null]],
            ["CPU", (n) => E.pct(n.cpu_percent), "nw"],
            ["Memory", (n) => `${E.bytes(n.mem_used)} / ${E.bytes(n.mem_total)}`, "nw"],
            ["Disk", (n) => `${E.bytes(n.disk_used)} / ${E.bytes(n.disk_total)}`, "nw"],
            ["Object store", (n) => `${E.bytes(n.object_store_used)} / ${E.bytes(n.object_store_total)}`, "nw"],
            ["Spilled", (n) => E.bytes(n.object_store_spilled), "nw"],
            ["Network", (n) => `↓ ${E.rate(n.net_rx_bps)} ↑ ${E.rate(n.net_tx_bps)}`, "nw"],
            ["Workers", (n) => String(n.num_workers)],
            ["Resources (used/total)", (n) => E.resources(n.resources_total, n.resources_available)],
          ], nodes, "No nodes."));
        },
      };
    },
  };

  E.views.node = {
    title: "Node",
    mount(el, [id]) {
      const head = h("h1", {}, "Node ", h("span", { class: "mono" }, id));
      const info = h("div"), workers = h("div", { id: "node-workers" }), logs = h("div", { id: "node-logs" });
      el.append(head, info, h("h2", {}, "Workers"), workers, h("h2", {}, "Log files"), logs);
      return {
        async tick() {
          const d = await E.api("/api/nodes/" + E.enc(id));
          const n = d.node;
          info.replaceChildren(E.kv([
            ["State", E.state(n.state)], ["IP", n.node_ip], ["Hostname", n.hostname || "-"],
            ["Head", n.is_head ? "yes" : "no"], ["Started", E.time(n.start_time)],
            ["CPU", E.pct(n.cpu_percent)],
            ["Memory", `${E.bytes(n.mem_used)} / ${E.bytes(n.mem_total)}`],
            ["Disk", `${E.bytes(n.disk_used)} / ${E.bytes(n.disk_total)}`],
            ["Object store", `${E.bytes(n.object_store_used)} / ${E.bytes(n.object_store_total)}` +
              ` (spilled ${E.bytes(n.object_store_spilled)})`],
            ["Resources", E.resources(n.resources_total, n.resources_available)],
            ["Death reason", n.death_reason || "-"],
          ]));
          workers.replaceChildren(E.table([
            ["PID", (w) => String(w.pid)],
            ["Type", (w) => w.type],
            ["Worker", (w) => w.worker_id, "mono"],
            ["Running", (w) => w.actor_class || w.task_name || "-"],
            ["CPU", (w) => E.pct(w.cpu_percent)],
            ["Memory (RSS)", (w) => E.bytes(w.rss)],
            ["Alive", (w) => (w.alive ? "yes" : "no")],
          ], d.workers, "No workers."));
          logs.replaceChildren((d.logs || []).length
            ? h("ul", { class: "files" }, d.logs.map((f) =>
              h("li", {}, E.link(`/logs/${E.enc(id)}/${E.enc(f)}`, f, "mono"))))
            : h("p", { class: "muted" }, "No log files."));
        },
      };
    },
  };
})(window.E);
