// The work pages: Actors, Tasks (counts, filtered list, failures with their
// tracebacks, the timeline) and Placement groups.
"use strict";
(function (E) {
  const h = E.h;
  const TASK_STATES = ["", "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER",
    "RUNNING", "FINISHED", "FAILED"];

  E.views.actors = {
    title: "Actors",
    mount(el) {
      const box = h("div", { id: "actors-table" });
      el.append(h("h1", {}, "Actors"), box);
      return {
        async tick() {
          const { actors } = await E.api("/api/actors?limit=1000");
          box.replaceChildren(E.table([
            ["Actor", (a) => a.actor_id, "mono"],
            ["Class", (a) => a.class_name],
            ["Name", (a) => a.name || "-"],
            ["State", (a) => E.state(a.state)],
            ["Node", (a) => E.nodeLink(a.node_id)],
            ["PID", (a) => (a.pid ? String(a.pid) : "-")],
            ["Restarts", (a) => String(a.num_restarts || 0)],
            ["Job", (a) => a.job_id || "-", "mono"],
            ["Death cause", (a) => (a.death_cause ? h("pre", {}, a.death_cause) : "-")],
          ], actors, "No actors."));
        },
      };
    },
  };

  function summaryTable(summary) {
    const byName = summary.by_name || {};
    const states = [...new Set(Object.values(byName).flatMap((c) => Object.keys(c)))].sort();
    const rows = Object.keys(byName).sort().map((name) => ({ name, counts: byName[name] }));
    return E.table([["Name", (r) => r.name, "mono"],
      ...states.map((s) => [s, (r) => String(r.counts[s] || 0)])], rows, "No tasks yet.");
  }

  E.views.tasks = {
    title: "Tasks",
    mount(el, params, kick) {
      const cards = h("div", { class: "cards", id: "tasks-by-state" });
      const summary = h("div", { id: "tasks-summary" });
      const state = h("select", { id: "task-state", onchange: kick },
        TASK_STATES.map((s) => h("option", { value: s }, s || "any state")));
      const name = h("input", { id: "task-name", placeholder: "name", onchange: kick });
      const job = h("input", { id: "task-job", placeholder: "job id", onchange: kick });
      const list = h("div", { id: "tasks-table" });
      const failed = h("div", { id: "tasks-failed" });
      el.append(h("h1", {}, "Tasks"), cards,
        h("p", {}, h("a", { href: "/api/timeline", download: "timeline.json", id: "timeline-link" },
          "Download the timeline"), h("span", { class: "muted" },
          " (Chrome trace format: open it in chrome://tracing or Perfetto)")),
        h("h2", {}, "By name"), summary,
        h("h2", {}, "Tasks"), h("div", { class: "filters" }, "Filter:", state, name, job), list,
        h("h2", {}, "Failed tasks"), failed);
      return {
        async tick() {
          const q = new URLSearchParams({ limit: "200" });
          if (state.value) q.set("state", state.value);
          if (name.value.trim()) q.set("name", name.value.trim());
          if (job.value.trim()) q.set("job_id", job.value.trim());
          const [s, t, f] = await Promise.all([
            E.api("/api/tasks/summary"), E.api("/api/tasks?" + q),
            E.api("/api/tasks?state=FAILED&limit=20")]);
          cards.replaceChildren(...Object.entries(s.by_state || {}).sort()
            .map(([k, n]) => E.card(k, String(n))));
          summary.replaceChildren(summaryTable(s));
          list.replaceChildren(h("p", { class: "muted" }, `${t.tasks.length} of ${t.total} shown`),
            E.table([
              ["Task", (x) => x.task_id, "mono"],
              ["Name", (x) => x.name, "mono"],
              ["State", (x) => E.state(x.state)],
              ["Type", (x) => x.type || "-"],
              ["Job", (x) => x.job_id || "-", "mono"],
              ["Node", (x) => E.nodeLink(x.node_id)],
              ["Started", (x) => E.time(x.start_time)],
              ["Duration", (x) => E.duration(x.start_time, x.end_time)],
            ], t.tasks, "No task matches."));
          failed.replaceChildren(f.tasks.length ? h("div", {}, f.tasks.map((x) =>
            h("div", { class: "failed" },
              h("h3", {}, h("span", { class: "mono" }, x.name), " ",
                h("span", { class: "muted mono" }, x.task_id), " ", x.error_type || ""),
              h("pre", { class: "traceback" }, x.error_message || "(no message)"))))
            : h("p", { class: "muted" }, "No failed tasks."));
        },
      };
    },
  };

  const bundles = (bs) => (bs || []).map((b) => "{" + E.resources(b) + "}").join(" ");

  E.views.pgs = {
    title: "Placement groups",
    mount(el) {
      const box = h("div", { id: "pgs-table" });
      el.append(h("h1", {}, "Placement groups"), box);
      return {
        async tick() {
          const d = await E.api("/api/placement_groups");
          box.replaceChildren(E.table([
            ["Placement group", (p) => p.placement_group_id, "mono"],
            ["Name", (p) => p.name || "-"],
            ["State", (p) => E.state(p.state)],
            ["Strategy", (p) => p.strategy],
            ["Bundles", (p) => bundles(p.bundles)],
            ["Nodes", (p) => [...new Set((p.bundle_nodes || []).filter(Boolean))].map((n) =>
              h("div", {}, E.nodeLink(n)))],
            ["Job", (p) => p.job_id || "-", "mono"],
          ], d.placement_groups, "No placement groups."));
        },
      };
    },
  };
})(window.E);
