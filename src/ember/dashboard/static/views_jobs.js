// The Jobs pages: the list (submitted jobs from Ray's Jobs API, driver jobs
// from /api/cluster) and one job: its fields, its driver log as it grows, Stop.
"use strict";
(function (E) {
  const h = E.h;
  const LIVE = new Set(["PENDING", "RUNNING"]);
  const MAX_LOG = 512 * 1024; // characters kept in the page

  // Ray's JobDetails rows, then the control service's driver jobs not among them
  async function allJobs() {
    const [subs, cluster] = await Promise.all([
      E.api("/api/jobs/").catch((err) => (err.status === 404 ? [] : Promise.reject(err))),
      E.api("/api/cluster"),
    ]);
    const rows = Array.isArray(subs) ? subs.slice() : [];
    const seen = new Set(rows.map((j) => j.job_id).filter(Boolean));
    for (const j of cluster.jobs || []) {
      if (!seen.has(j.job_id)) rows.push({ type: "DRIVER", ...j });
    }
    rows.sort((a, b) => (b.start_time || 0) - (a.start_time || 0));
    return rows;
  }

  E.views.jobs = {
    title: "Jobs",
    mount(el) {
      const box = h("div", { id: "jobs-table" });
      el.append(h("h1", {}, "Jobs"), box);
      return {
        async tick() {
          const jobs = await allJobs();
          box.replaceChildren(E.table([
            ["Job", (j) => E.link("/jobs/" + E.enc(j.submission_id || j.job_id), j.submission_id || j.job_id, "mono")],
            ["Type", (j) => j.type || "-"],
            ["Job id", (j) => j.job_id || "-", "mono"],
            ["Status", (j) => E.state(j.status)],
            ["Entrypoint", (j) => j.entrypoint || "-", "mono"],
            ["Started", (j) => E.time(j.start_time)],
            ["Ended", (j) => E.time(j.end_time)],
            ["Duration", (j) => E.duration(j.start_time, j.end_time)],
          ], jobs, "No jobs yet."));
        },
      };
    },
  };

  // A job's driver log: the websocket tail while it is open, else polling.
  class LogFollower {
    constructor(id, pre) {
      this.id = id;
      this.pre = pre;
      this.mode = "none";
      this.ws = null;
    }

    start() {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const url = `${proto}//${location.host}/api/jobs/${E.enc(this.id)}/logs/tail`;
      let opened = false;
      this.mode = "ws";
      this.text = "";
      try { this.ws = new WebSocket(url); } catch (e) { this.mode = "poll"; return; }
      this.ws.onopen = () => { opened = true; this.show(""); };
      this.ws.onmessage = (ev) => { this.show(this.text + String(ev.data)); };
      this.ws.onclose = () => { this.ws = null; if (!opened) this.mode = "poll"; else this.mode = "closed"; };
    }

    // called on every tick; the job's status says whether to keep reading.
    // A closed socket is followed by one read of the whole log (all of it,
    // whatever the socket had sent), and by polling while the job runs.
    async tick(live) {
      if (this.mode === "none") this.start();
      if (this.mode === "poll" || this.mode === "closed") {
        this.mode = live ? "poll" : "done";
        const r = await E.api(`/api/jobs/${E.enc(this.id)}/logs`);
        this.show(r.logs || "");
      }
    }

    show(text) {
      const pre = this.pre;
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      this.text = text.length > MAX_LOG ? text.slice(text.length - MAX_LOG) : text;
      pre.textContent = this.text;
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }

    stop() {
      if (this.ws) this.ws.close();
      this.mode = "done";
    }
  }

  E.views.job = {
    title: "Job",
    mount(el, [id], kick) {
      const info = h("div", { id: "job-info" });
      const actions = h("div", { class: "filters" });
      const pre = h("pre", { class: "log", id: "job-log" });
      const logNote = h("p", { class: "muted" });
      el.append(h("h1", {}, "Job ", h("span", { class: "mono" }, id)), actions, info,
        h("h2", {}, "Driver log"), logNote, pre);
      let follower = null;
      let stopping = false;
      async function stopJob() {
        stopping = true;
        try { await E.post(`/api/jobs/${E.enc(id)}/stop`); } finally { stopping = false; kick(); }
      }
      return {
        async tick() {
          let j;
          try {
            j = await E.api("/api/jobs/" + E.enc(id));
          } catch (err) {
            if (err.status !== 404) throw err;
            j = (await allJobs()).find((x) => x.job_id === id || x.submission_id === id);
            if (!j) throw err;
          }
          const live = LIVE.has(j.status);
          actions.replaceChildren(live
            ? h("button", { class: "danger", id: "job-stop", disabled: stopping, onclick: stopJob }, "Stop")
            : h("span", { class: "muted" }, "The job has ended."));
          info.replaceChildren(E.kv([
            ["Status", E.state(j.status)],
            ["Message", j.message || "-"],
            ["Type", j.type || "-"],
            ["Submission id", j.submission_id || "-"],
            ["Job id", j.job_id || "-"],
            ["Entrypoint", h("span", { class: "mono" }, j.entrypoint || "-")],
            ["Started", E.time(j.start_time)],
            ["Ended", E.time(j.end_time)],
            ["Duration", E.duration(j.start_time, j.end_time)],
            ["Driver", j.driver_info ? `pid ${j.driver_info.pid} on ${j.driver_info.node_ip_address}` :
              j.driver_pid ? `pid ${j.driver_pid}` : "-"],
            ["Runtime env", E.json(j.runtime_env || {})],
            ["Metadata", E.json(j.metadata || {})],
          ]));
          if (!j.submission_id) {
            logNote.textContent = "A driver started by a script prints to its own terminal.";
            pre.hidden = true;
            return;
          }
          if (!follower) follower = new LogFollower(j.submission_id, pre);
          await follower.tick(live);
        },
        stop() { if (follower) follower.stop(); },
      };
    },
  };
})(window.E);
