// The pages' shared helpers: building elements (text only, never HTML), the
// API's fetch, and number/time formats.
"use strict";
window.E = window.E || { views: {} };

(function (E) {
  // h("a", {href: "#/x", class: "c"}, "text", child, [more]): every string
  // child becomes a text node, so data is never parsed as HTML.
  E.h = function (tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = String(v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    E.append(el, kids);
    return el;
  };

  E.append = function (el, kids) {
    for (const kid of kids) {
      if (kid === null || kid === undefined || kid === false) continue;
      if (Array.isArray(kid)) E.append(el, kid);
      else if (kid instanceof Node) el.appendChild(kid);
      else el.appendChild(document.createTextNode(String(kid)));
    }
    return el;
  };

  // Only http(s) links leave the dashboard (a javascript: URL never does).
  E.safeUrl = function (url) {
    return /^https?:\/\//i.test(String(url || "")) ? String(url) : "#";
  };

  E.enc = encodeURIComponent;

  E.LoggedOut = class LoggedOut extends Error {};

  async function call(path, opts, asText) {
    const resp = await fetch(path, {
      credentials: "same-origin",
      headers: { Accept: asText ? "text/plain" : "application/json" },
      ...(opts || {}),
    });
    if (resp.status === 401) throw new E.LoggedOut("the session has ended");
    if (!resp.ok) {
      let msg = resp.statusText;
      try {
        const body = await resp.text();
        try { msg = JSON.parse(body).error || body; } catch (e) { msg = body || msg; }
      } catch (e) { /* keep the status text */ }
      const err = new Error(`${path}: ${resp.status} ${String(msg).trim()}`);
      err.status = resp.status;
      throw err;
    }
    return asText ? resp.text() : resp.json();
  }
  E.api = (path, opts) => call(path, opts, false);
  E.apiText = (path) => call(path, null, true);
  E.post = (path) => call(path, { method: "POST" }, false);

  // ---- formats ----
  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  E.bytes = function (n) {
    if (n === null || n === undefined || isNaN(n)) return "-";
    let i = 0;
    n = Number(n);
    while (Math.abs(n) >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 2 : 1)) + " " + UNITS[i];
  };
  E.rate = (n) => (n === null || n === undefined ? "-" : E.bytes(n) + "/s");
  E.pct = (n) => (n === null || n === undefined || isNaN(n) ? "-" : Number(n).toFixed(1) + "%");
  E.num = function (n) {
    if (n === null || n === undefined) return "-";
    return Number.isInteger(n) ? String(n) : Number(n).toFixed(2).replace(/\.?0+$/, "");
  };
  const two = (x) => String(x).padStart(2, "0");
  E.time = function (ms) {
    if (!ms) return "-";
    const d = new Date(ms);
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
      `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  };
  E.clock = function (ms, seconds) {
    const d = new Date(ms);
    return `${two(d.getHours())}:${two(d.getMinutes())}` + (seconds ? `:${two(d.getSeconds())}` : "");
  };
  E.duration = function (start, end) {
    if (!start) return "-";
    let s = Math.max(0, Math.round(((end || Date.now()) - start) / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    s %= 60;
    return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
  };
  // a resource dict as "CPU 1/2, GPU 0/1" (used of total), node:* left out
  E.resources = function (total, avail) {
    const parts = [];
    for (const [k, t] of Object.entries(total || {}).sort()) {
      // node:<ip> markers and a placement group's own bundle resources stay out
      if (k.startsWith("node:") || k.includes("_group_")) continue;
      const big = k === "memory" || k === "object_store_memory";
      const f = big ? E.bytes : E.num;
      parts.push(avail ? `${k} ${f(t - (avail[k] || 0))}/${f(t)}` : `${k} ${f(t)}`);
    }
    return parts.join(", ") || "-";
  };

  // ---- pieces ----
  const STATE_CLASS = {
    ALIVE: "ok", FINISHED: "ok", SUCCEEDED: "ok", CREATED: "ok",
    DEAD: "bad", FAILED: "bad", REMOVED: "bad", STOPPED: "bad",
    RUNNING: "run", RUNNING_IN_RAY_GET: "run", RUNNING_IN_RAY_WAIT: "run",
  };
  E.state = (s) => E.h("span", { class: "state " + (STATE_CLASS[s] || "wait") }, s || "-");

  // table([[header, row => cell], ...], rows, "nothing yet")
  E.table = function (cols, rows, empty) {
    if (!rows || rows.length === 0) return E.h("p", { class: "muted" }, empty || "None.");
    return E.h("table", {},
      E.h("thead", {}, E.h("tr", {}, cols.map(([head]) => E.h("th", {}, head)))),
      E.h("tbody", {}, rows.map((r) =>
        E.h("tr", {}, cols.map(([, cell, cls]) => E.h("td", { class: cls }, cell(r)))))));
  };

  E.card = function (label, value, sub, frac) {
    let bar = null;
    if (frac !== undefined) {
      const fill = E.h("span");
      // CSSOM, not a style attribute: the page's CSP allows no inline style
      fill.style.width = Math.min(100, Math.max(0, (frac || 0) * 100)).toFixed(1) + "%";
      bar = E.h("div", { class: "bar" }, fill);
    }
    return E.h("div", { class: "card" }, E.h("div", { class: "label" }, label),
      E.h("div", { class: "value" }, value), sub ? E.h("div", { class: "sub" }, sub) : null, bar);
  };

  E.kv = function (pairs) {
    return E.h("dl", { class: "kv" }, pairs.map(([k, v]) => [E.h("dt", {}, k), E.h("dd", {}, v)]));
  };

  E.link = (hash, text, cls) => E.h("a", { href: "#" + hash, class: cls }, text);
  E.nodeLink = (id) => (id ? E.link("/nodes/" + E.enc(id), id, "mono") : "-");
  E.json = (v) => E.h("pre", {}, JSON.stringify(v === undefined ? null : v, null, 2));
})(window.E);
