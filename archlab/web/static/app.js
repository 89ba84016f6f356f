// archlab serve: the little the pages need beyond HTML.
// 1. Pages of a running run poll /api/runs/RUN/version and, when it changes, fetch the page
//    again and swap its live regions (elements with data-live-region and an id) in place,
//    leaving alone any region holding a form the person is typing in.
// 2. Table headers with data-sort-key sort the rows in the browser when the table holds every
//    matching row (data-complete); otherwise, and without JavaScript, their links sort on the server.
"use strict";

(function () {
  const POLL_MS = 3000;

  function markDirty(event) {
    const form = event.target.closest("form");
    if (form) form.dataset.dirty = "1";
  }

  function busy(region) {
    if (region.querySelector("form[data-dirty]")) return true;
    const active = document.activeElement;
    return active && active !== document.body && region.contains(active) && /INPUT|TEXTAREA|SELECT/.test(active.tagName);
  }

  async function refresh() {
    const response = await fetch(window.location.href, { headers: { "X-Archlab-Refresh": "1" }, credentials: "same-origin" });
    if (!response.ok) return false;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    document.querySelectorAll("[data-live-region][id]").forEach(function (old) {
      const next = fresh.getElementById(old.id);
      if (next && !busy(old)) old.replaceWith(document.importNode(next, true));
    });
    const still = fresh.body.dataset.live === "1";
    document.body.dataset.live = still ? "1" : "";
    const dot = document.getElementById("live-dot");
    if (dot && !still) dot.remove();
    return still;
  }

  function poll() {
    const body = document.body;
    if (body.dataset.live !== "1") return;
    const url = body.dataset.versionUrl;
    let version = body.dataset.version || "";
    const tick = async function () {
      try {
        let changed = true;
        if (url) {
          const answer = await fetch(url, { credentials: "same-origin" });
          if (answer.ok) {
            const now = (await answer.json()).version;
            changed = now !== version;
            version = now;
          }
        }
        if (changed && !(await refresh())) return;  // the run stopped: one last refresh, then quiet
      } catch (error) {
        // the server went away for a moment: try again at the next tick
      }
      window.setTimeout(tick, POLL_MS);
    };
    window.setTimeout(tick, POLL_MS);
  }

  function cellValue(row, index) {
    const cell = row.children[index];
    if (!cell) return "";
    return cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim();
  }

  function sortTable(header) {
    const table = header.closest("table");
    const body = table.tBodies[0];
    const index = Array.prototype.indexOf.call(header.parentNode.children, header);
    const descending = header.dataset.dir ? header.dataset.dir !== "desc" : header.dataset.natural === "desc";
    const numeric = header.dataset.type === "num";
    const rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      const x = cellValue(a, index), y = cellValue(b, index);
      if (x === "" && y !== "") return 1;   // rows without the figure go last either way
      if (y === "" && x !== "") return -1;
      const order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.querySelectorAll("th").forEach(function (th) { th.classList.remove("sorted"); delete th.dataset.dir; });
    header.classList.add("sorted");
    header.dataset.dir = descending ? "desc" : "asc";
    const params = new URLSearchParams(window.location.search);
    params.set("sort", header.dataset.sortKey);
    params.set("order", header.dataset.dir);
    window.history.replaceState(null, "", window.location.pathname + "?" + params.toString());
  }

  document.addEventListener("input", markDirty);
  document.addEventListener("click", function (event) {
    const header = event.target.closest("table[data-complete] th[data-sort-key]");  // a partial table sorts on the server
    if (header && !event.metaKey && !event.ctrlKey) {
      event.preventDefault();
      sortTable(header);
    }
  });
  document.addEventListener("DOMContentLoaded", poll);
})();
