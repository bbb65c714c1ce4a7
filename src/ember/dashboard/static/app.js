// The hash router and the poll loop: the page of location.hash is mounted
// once, then its tick() runs every POLL_MS (and at once on kick()).
// #main carries data-view (the page's name) and data-ticks (its updates so
// far), which the browser tests wait on.
"use strict";
(function (E) {
  const POLL_MS = 3000;
  const ROUTES = [
    [/^\/$/, "overview"],
    [/^\/nodes$/, "nodes"],
    [/^\/nodes\/([^/]+)$/, "node"],
    [/^\/jobs$/, "jobs"],
    [/^\/jobs\/([^/]+)$/, "job"],
    [/^\/actors$/, "actors"],
    [/^\/tasks$/, "tasks"],
    [/^\/placement-groups$/, "pgs"],
    [/^\/logs$/, "logs"],
    [/^\/logs\/([^/]+)\/([^/]+)$/, "logFile"],
    [/^\/metrics$/, "metrics"],
  ];
  const main = document.getElementById("main");
  const banner = document.getElementById("banner");
  const status = document.getElementById("status");
  let active = null; // {name, ctl, timer, dead}

  E.setStatus = (text) => { status.textContent = text; };

  function showBanner(parts) {
    if (!parts) { banner.hidden = true; banner.replaceChildren(); return; }
    banner.replaceChildren(...parts.map((p) => (typeof p === "string" ? document.createTextNode(p) : p)));
    banner.hidden = false;
  }

  function route() {
    const path = (location.hash.replace(/^#/, "") || "/").split("?")[0];
    for (const [re, name] of ROUTES) {
      const m = re.exec(path);
      if (m) return { name, params: m.slice(1).map(decodeURIComponent), path };
    }
    return { name: null, params: [], path };
  }

  function markNav(path) {
    const top = "/" + (path.split("/")[1] || "");
    for (const a of document.querySelectorAll("#nav a")) {
      a.classList.toggle("active", a.getAttribute("href") === "#" + top);
    }
  }

  async function run(page) {
    if (page.dead) return;
    clearTimeout(page.timer);
    page.timer = null;
    if (page.busy) { page.again = true; return; }
    if (document.hidden && page.ticked) { page.timer = setTimeout(() => run(page), POLL_MS); return; }
    page.busy = true;
    try {
      await page.ctl.tick();
      if (page.dead) return;
      page.ticked = true;
      // the first page that showed data (bench/dashboard_page.py reads it)
      if (!performance.getEntriesByName("ember-first-data").length) performance.mark("ember-first-data");
      main.dataset.ticks = String(Number(main.dataset.ticks || 0) + 1);
      showBanner(null);
    } catch (err) {
      if (page.dead) return;
      if (err instanceof E.LoggedOut) {
        page.dead = true;
        showBanner(["Your dashboard session has ended: ", E.h("a", { href: "/" }, "log in again"), "."]);
        return;
      }
      showBanner([`Could not update this page: ${err.message}`]);
    } finally {
      page.busy = false;
    }
    if (page.dead) return;
    if (page.again) { page.again = false; run(page); return; }
    page.timer = setTimeout(() => run(page), POLL_MS);
  }

  function show() {
    if (active) {
      active.dead = true;
      clearTimeout(active.timer);
      if (active.ctl && active.ctl.stop) active.ctl.stop();
    }
    const { name, params, path } = route();
    markNav(path);
    const el = document.createElement("div");
    main.replaceChildren(el);
    main.dataset.ticks = "0";
    showBanner(null);
    if (!name) {
      main.dataset.view = "none";
      el.append(E.h("h1", {}, "Not found"), E.h("p", {}, "No page at ", E.h("span", { class: "mono" }, path), ". ",
        E.link("/", "Go to the overview"), "."));
      active = null;
      return;
    }
    const view = E.views[name];
    main.dataset.view = name;
    document.title = `${view.title} · ember dashboard`;
    const page = { name, dead: false, timer: null, busy: false, again: false, ticked: false, ctl: null };
    page.ctl = view.mount(el, params, () => run(page));
    active = page;
    run(page);
  }

  // the token of a ?token= visit has become a cookie: keep it out of the history
  if (new URLSearchParams(location.search).has("token")) {
    history.replaceState(null, "", location.pathname + location.hash);
  }
  // a hidden tab does not poll; it catches up when shown again
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && active && !active.dead && !active.busy) run(active);
  });
  window.addEventListener("hashchange", show);
  show();
})(window.E);
