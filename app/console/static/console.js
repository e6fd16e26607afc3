// The sagaflow console's page: a small router over the JSON API (README.md, "Console").
// No framework, no network beyond this console; every value from the API is put in the page as
// text (never as HTML), so a dead letter's body cannot script the page.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const view = document.getElementById("view");
const STATES = ["running", "compensating", "stuck", "confirmed", "failed", "parked"];
let poll = null;  // the overview's refresh timer

// ---- helpers ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.detail ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

// GET or POST to the API; resolves to [parsed JSON, raw text].
async function api(path, body) {
  const opts = { credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.headers["X-CSRF-Token"] = csrf;
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const text = await res.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = null; }
  if (res.status === 401) { location.href = "/login"; throw new ApiError(401, data); }
  if (!res.ok) throw new ApiError(res.status, data);
  return [data, text];
}

function notice(text, isError) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.className = isError ? "error" : "";
  n.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => { n.hidden = true; }, isError ? 15000 : 8000);
}

function confirmAction(text) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.returnValue = "";
    dlg.showModal();
  });
}

function time(ms) {
  if (!ms) return "-";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function badge(state) { return h("span", { class: `badge ${state}` }, state); }

function params(query) { return new URLSearchParams(query || ""); }

function show(...nodes) { view.replaceChildren(...nodes); }

function setNav(name) {
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.dataset.nav === name);
  }
}

function failed(e) {
  show(h("h1", {}, "Something went wrong"), h("p", { class: "error", id: "error" }, e.message));
}

// ---- overview ----

async function overview() {
  setNav("overview");
  const render = async () => {
    const [o] = await api("/api/overview");
    const cards = STATES.map((s) =>
      h("a", { class: `card ${s}`, href: `#/sagas?state=${s}`, id: `card-${s}` },
        h("div", { class: "n" }, o.sagas[s] ?? 0), h("div", { class: "label" }, s)));
    const dead = Object.entries(o.dead_letters.by_reason).sort((a, b) => b[1] - a[1]);
    show(
      h("h1", {}, "Overview"),
      h("h2", {}, "Sagas by state"),
      h("div", { class: "cards" }, cards,
        h("a", { class: "card", href: "#/sagas?state=parked", id: "card-parked-starts" },
          h("div", { class: "n" }, o.parked), h("div", { class: "label" }, "parked starts (queued)"))),
      h("h2", {}, `Last ${o.recent.window_s} s`),
      h("div", { class: "cards" },
        h("a", { class: "card confirmed", href: "#/sagas?state=confirmed", id: "recent-confirmed" },
          h("div", { class: "n" }, o.recent.confirmed), h("div", { class: "label" }, "confirmed / min")),
        h("a", { class: "card failed", href: "#/sagas?state=failed", id: "recent-failed" },
          h("div", { class: "n" }, o.recent.failed), h("div", { class: "label" }, "failed / min"))),
      h("div", { class: "grid2" },
        h("div", {},
          h("h2", {}, "Dead letters by reason"),
          h("table", { id: "dead-by-reason" },
            h("tr", {}, h("th", {}, "reason"), h("th", {}, "count")),
            dead.length === 0 ? h("tr", {}, h("td", { colspan: 2, class: "muted" }, "none")) : null,
            dead.map(([r, n]) => h("tr", {},
              h("td", {}, h("a", { href: `#/dead-letters?reason=${encodeURIComponent(r)}` }, r)),
              h("td", {}, n)))),
          h("p", {}, h("a", { href: "#/dead-letters", id: "dead-total" }, `${o.dead_letters.total} in total`))),
        h("div", {},
          h("h2", {}, "Outgoing webhooks"),
          h("div", { class: "cards" },
            h("a", { class: "card", href: "#/endpoints", id: "endpoints-total" },
              h("div", { class: "n" }, o.endpoints.total), h("div", { class: "label" }, "endpoints")),
            h("a", { class: "card failed", href: "#/endpoints", id: "endpoints-open" },
              h("div", { class: "n" }, o.endpoints.circuit_open), h("div", { class: "label" }, "circuit open"))))));
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  };
  await render();
  poll = setInterval(() => render().catch((e) => notice(e.message, true)), 2000);
}

// ---- sagas ----

async function sagaList(query) {
  setNav("sagas");
  const q = params(query);
  const state = q.get("state") || "";
  const reason = q.get("reason") || "";
  const api_q = new URLSearchParams();
  if (state) api_q.set("state", state);
  if (reason) api_q.set("reason", reason);
  api_q.set("limit", q.get("limit") || "50");
  if (q.get("cursor")) api_q.set("cursor", q.get("cursor"));
  const [page] = await api(`/api/sagas?${api_q}`);
  const filters = h("div", { class: "filters" }, "State:",
    h("a", { href: "#/sagas", class: !state && !reason ? "active" : null }, "all"),
    STATES.map((s) => h("a", { href: `#/sagas?state=${s}`, class: s === state ? "active" : null }, s)),
    reason ? h("span", {}, "Reason: ", h("span", { class: "badge failed" }, reason)) : null);
  const rows = page.sagas.map((s) => h("tr", { "data-order": s.order_id },
    h("td", { class: "mono" }, h("a", { href: `#/saga/${encodeURIComponent(s.order_id)}` }, s.order_id)),
    h("td", {}, badge(s.state)),
    h("td", {}, s.reason ? h("a", { href: `#/sagas?reason=${encodeURIComponent(s.reason)}` }, s.reason) : "-"),
    h("td", {}, s.store_id || "-"),
    h("td", {}, time(s.updated_at))));
  const next = new URLSearchParams(q);
  if (page.next_cursor) next.set("cursor", page.next_cursor);
  show(
    h("h1", {}, "Sagas"), filters,
    h("table", { id: "sagas" },
      h("tr", {}, h("th", {}, "order"), h("th", {}, "state"), h("th", {}, "reason"), h("th", {}, "store"), h("th", {}, "updated")),
      rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "no saga here"))),
    h("div", { class: "pager" },
      q.get("cursor") ? h("button", { onclick: () => history.back() }, "← Newer") : null,
      page.next_cursor ? h("a", { href: `#/sagas?${next}`, id: "next-page" }, h("button", {}, "Older →")) : null));
}

// The definition drawn as a graph: the steps left to right (command above, compensation below,
// in reverse order of undoing), coloured by the saga's step states, the current position marked.
function graph(def, saga) {
  const n = def.steps.length;
  const W = 190, GAP = 40, X0 = 20, Y0 = 34, BH = 52;
  const width = X0 * 2 + n * W + (n) * GAP + 130;
  const el = svg("svg", { class: "graph", viewBox: `0 0 ${width} 250`, id: "saga-graph", role: "img",
    "aria-label": `saga ${def.name}` });
  const due = new Set(saga.pending_compensations || []);
  const compensating = saga.state === "compensating" || saga.state === "stuck" || saga.state === "failed";
  el.append(svg("text", { x: X0, y: 18, class: "small" }, "forward"));
  el.append(svg("text", { x: X0, y: 232, class: "small" }, "compensation (undone right to left)"));
  def.steps.forEach((step, i) => {
    const st = (saga.steps && saga.steps[i]) || { status: "not_started" };
    const x = X0 + i * (W + GAP);
    el.append(svg("rect", { x, y: Y0, width: W, height: BH, class: st.status, "data-step": step.name }));
    el.append(svg("text", { x: x + 10, y: Y0 + 20 }, `${i + 1}. ${step.name}`));
    el.append(svg("text", { x: x + 10, y: Y0 + 38, class: "small" }, `${step.command} → ${st.status}`));
    if (i + 1 < n) el.append(svg("line", { x1: x + W, y1: Y0 + BH / 2, x2: x + W + GAP, y2: Y0 + BH / 2 }));
    const cy = 156;
    let cls = "not_started";
    if (st.status === "compensated") cls = "compensated";
    else if (st.status === "compensating") cls = saga.state === "stuck" ? "stuck" : "compensating";
    else if (due.has(step.compensation)) cls = "due";
    el.append(svg("rect", { x, y: cy, width: W, height: BH, class: cls, "data-compensation": step.compensation }));
    el.append(svg("text", { x: x + 10, y: cy + 20 }, step.compensation));
    el.append(svg("text", { x: x + 10, y: cy + 38, class: "small" },
      cls === "due" ? "due" : cls === "stuck" ? `stuck after ${st.compensation_attempts} sends` :
        cls === "compensating" ? "sent, awaiting ack" : cls === "compensated" ? `acked (${step.compensation_ack})` : "-"));
    el.append(svg("line", { x1: x + W / 2, y1: Y0 + BH, x2: x + W / 2, y2: cy }));
    if (st.status === "pending" || (st.status === "compensating" && compensating)) {
      const my = st.status === "pending" ? Y0 - 8 : cy - 8;
      el.append(svg("path", { class: "marker", d: `M${x + W / 2 - 7} ${my - 10} L${x + W / 2 + 7} ${my - 10} L${x + W / 2} ${my} Z` }));
    }
  });
  const ox = X0 + n * (W + GAP);
  const outcome = saga.state === "confirmed" ? "outcome-confirmed" : saga.state === "failed" ? "outcome-failed" : "not_started";
  el.append(svg("line", { x1: ox - GAP, y1: Y0 + BH / 2, x2: ox, y2: Y0 + BH / 2 }));
  el.append(svg("rect", { x: ox, y: Y0, width: 110, height: BH, class: outcome, id: "graph-outcome" }));
  const failing = ["compensating", "stuck", "failed"].includes(saga.state);
  el.append(svg("text", { x: ox + 10, y: Y0 + 20 }, failing ? "order.failed" : "order.confirmed"));
  el.append(svg("text", { x: ox + 10, y: Y0 + 38, class: "small" }, saga.outcome ? "published" : "not yet"));
  return el;
}

async function sagaPage(orderId) {
  setNav("sagas");
  let data, raw;
  try {
    [data, raw] = await api(`/api/sagas/${encodeURIComponent(orderId)}`);
  } catch (e) {
    if (e.status === 404) {
      show(h("h1", {}, "No such saga"), h("p", { id: "error" }, e.message),
        h("p", {}, h("a", { href: "#/sagas" }, "All sagas")));
      return;
    }
    throw e;
  }
  const s = data.saga;
  const def = data.definition;
  // The exact total, as stored (JSON numbers would lose digits in a double).
  const m = raw.match(/"total":"?(-?[0-9][0-9.eE+-]*)/);
  const total = m ? m[1] : s.total;
  const commands = [];
  (s.steps || []).forEach((st, i) => {
    if (st.attempts > 0 && def) {
      const cmd = def.steps[i].command;
      commands.push([cmd, `${s.order_id}:${cmd}`, `${st.attempts} send(s)`]);
    }
  });
  for (const c of s.compensations || []) {
    const step = (s.steps || []).find((st) => st.compensation === c);
    commands.push([c, `${s.order_id}:${c}`, step ? `${step.compensation_attempts} send(s)` : ""]);
  }
  let items = [];
  if (Array.isArray(s.items)) items = s.items;
  const actions = h("div", {});
  if (s.state === "stuck") {
    actions.append(h("button", { class: "danger", id: "resend", onclick: async (ev) => {
      const due = (s.pending_compensations || [])[0] || "the due compensation";
      if (!(await confirmAction(`Re-send ${due} for order ${s.order_id} now, with the same command id ${s.order_id}:${due}?`))) return;
      ev.target.disabled = true;
      try {
        const [r] = await api(`/api/sagas/${encodeURIComponent(orderId)}/resend`, {});
        notice(`Re-sent ${r.resent.map((c) => `${c.type} (id ${c.id})`).join(", ")}; a worker publishes it within seconds.`);
        await sagaPage(orderId);
      } catch (e) { notice(e.message, true); ev.target.disabled = false; }
    } }, "Re-send due compensation now…"));
  }
  show(
    h("h1", {}, "Saga ", h("span", { class: "mono", id: "saga-order" }, s.order_id), " ", h("span", { id: "saga-state" }, badge(s.state))),
    s.reason ? h("p", {}, "Reason: ", h("a", { href: `#/sagas?reason=${encodeURIComponent(s.reason)}`, id: "saga-reason" }, s.reason),
      s.detail ? ` (${s.detail})` : "") : null,
    actions,
    h("h2", {}, `Definition: ${def ? def.name : s.saga}`),
    def ? graph(def, s) : h("p", { class: "muted" }, "this console does not know the definition"),
    h("div", { class: "legend" }, "blue: waiting for a reply · green: done · red: failed or timed out · amber: compensating or due · purple: stuck · grey: compensated · ▼ where the saga is"),
    h("div", { class: "grid2" },
      h("div", {},
        h("h2", {}, "History"),
        h("ol", { class: "timeline", id: "timeline" },
          (s.history || []).map((e) => h("li", { class: e.event === "timeout" ? "timeout" : null },
            h("strong", {}, e.event), " ", h("span", { class: "muted" }, time(e.at_ms)))))),
      h("div", {},
        h("h2", {}, "Order"),
        h("dl", { class: "kv", id: "order" },
          h("dt", {}, "store"), h("dd", {}, s.store_id || "-"),
          h("dt", {}, "customer"), h("dd", {}, s.customer_id || "-"),
          h("dt", {}, "total"), h("dd", { id: "order-total" }, total !== undefined ? `${total} ${s.currency || ""}` : "-"),
          h("dt", {}, "version"), h("dd", {}, s.version)),
        h("table", { id: "items" }, h("tr", {}, h("th", {}, "sku"), h("th", {}, "qty"), h("th", {}, "price")),
          items.map((it) => h("tr", {}, h("td", {}, it.sku ?? "-"), h("td", {}, it.qty ?? it.quantity ?? "-"), h("td", {}, it.price ?? "-")))),
        h("h2", {}, "Commands sent"),
        h("table", { id: "commands" }, h("tr", {}, h("th", {}, "command"), h("th", {}, "id"), h("th", {}, "")),
          commands.map(([c, id, n]) => h("tr", {}, h("td", {}, c), h("td", { class: "mono" }, id), h("td", {}, n)))),
        h("h2", {}, "Pending compensations"),
        h("p", { id: "pending" }, (s.pending_compensations || []).length ? s.pending_compensations.join(" → ") : "none"))));
}

// ---- dead letters ----

async function deadLetters(query) {
  setNav("dead-letters");
  const q = params(query);
  const reason = q.get("reason") || "";
  const api_q = new URLSearchParams();
  if (reason) api_q.set("reason", reason);
  api_q.set("limit", "50");
  if (q.get("cursor")) api_q.set("cursor", q.get("cursor"));
  const [[page], [o]] = await Promise.all([api(`/api/dead-letters?${api_q}`), api("/api/overview")]);
  const replay = async (body, what) => {
    if (!(await confirmAction(`Replay ${what} to the original route?`))) return;
    try {
      const [r] = await api("/api/dead-letters/replay", body);
      notice(`Replayed ${r.replayed} dead letter(s).`);
    } catch (e) { notice(e.message, true); }
    await deadLetters(query);
  };
  const rows = page.dead_letters.map((d) => h("tr", { "data-id": d.id },
    h("td", {}, h("input", { type: "checkbox", class: "pick", value: d.id, "aria-label": `select ${d.id}` })),
    h("td", {}, h("a", { href: `#/dead-letters?reason=${encodeURIComponent(d.reason)}` }, d.reason)),
    h("td", {}, d.detail),
    h("td", {}, d.attempts),
    h("td", { class: "mono" }, d.route),
    h("td", {}, time(d.at)),
    h("td", { class: "mono preview" }, d.body_preview),
    h("td", {}, h("button", { class: "replay-one", onclick: () => replay({ ids: [d.id] }, "this dead letter") }, "Replay"))));
  const reasons = Object.keys(o.dead_letters.by_reason).sort();
  const next = new URLSearchParams(q);
  if (page.next_cursor) next.set("cursor", page.next_cursor);
  show(
    h("h1", {}, "Dead letters"),
    h("div", { class: "filters" }, "Reason:",
      h("a", { href: "#/dead-letters", class: reason ? null : "active" }, "all"),
      reasons.map((r) => h("a", { href: `#/dead-letters?reason=${encodeURIComponent(r)}`, class: r === reason ? "active" : null },
        `${r} (${o.dead_letters.by_reason[r]})`))),
    h("div", { class: "filters" },
      h("button", { id: "replay-selected", onclick: () => {
        const ids = [...document.querySelectorAll("input.pick:checked")].map((c) => c.value);
        if (ids.length === 0) { notice("Select at least one dead letter to replay.", true); return; }
        replay({ ids }, `${ids.length} selected dead letter(s)`);
      } }, "Replay selected"),
      reason ? h("button", { id: "replay-reason", class: "danger", onclick: () => replay({ reason }, `every dead letter with reason ${reason}`) },
        `Replay all "${reason}"`) : null),
    h("table", { id: "dead-letters" },
      h("tr", {}, h("th", {}, ""), h("th", {}, "reason"), h("th", {}, "detail"), h("th", {}, "attempts"),
        h("th", {}, "route"), h("th", {}, "at"), h("th", {}, "body"), h("th", {}, "")),
      rows.length ? rows : h("tr", {}, h("td", { colspan: 8, class: "muted" }, "no dead letter"))),
    h("div", { class: "pager" },
      page.next_cursor ? h("a", { href: `#/dead-letters?${next}` }, h("button", {}, "Older →")) : null));
}

// ---- endpoints and deliveries ----

async function endpoints(query) {
  setNav("endpoints");
  const q = params(query);
  const api_q = new URLSearchParams({ limit: "50" });
  if (q.get("endpoint")) api_q.set("endpoint", q.get("endpoint"));
  api_q.set("state", q.get("state") || "failed");
  const [[eps], [dl]] = await Promise.all([api("/api/endpoints"), api(`/api/deliveries?${api_q}`)]);
  show(
    h("h1", {}, "Endpoints"),
    h("table", { id: "endpoints" },
      h("tr", {}, h("th", {}, "id"), h("th", {}, "url"), h("th", {}, "events"), h("th", {}, "store"), h("th", {}, "state"), h("th", {}, "circuit"), h("th", {}, "")),
      eps.endpoints.length ? eps.endpoints.map((e) => h("tr", {},
        h("td", { class: "mono" }, h("a", { href: `#/endpoints?endpoint=${encodeURIComponent(e.id)}` }, e.id)),
        h("td", { class: "mono" }, e.url), h("td", {}, e.events.join(", ")), h("td", {}, e.store_id || "*"),
        h("td", {}, e.state), h("td", {}, badge(e.circuit)),
        h("td", {}, h("button", { class: "replay-deliveries", "data-endpoint": e.id, onclick: async () => {
          if (!(await confirmAction(`Deliver every dead delivery of ${e.id} again (same webhook-id)?`))) return;
          try {
            const [r] = await api("/api/deliveries/replay", { endpoint: e.id });
            notice(`Replayed ${r.replayed} dead deliveries of ${e.id}.`);
          } catch (err) { notice(err.message, true); }
          await endpoints(query);
        } }, "Replay dead"))))
        : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "no endpoint (sagaflow endpoints add)"))),
    h("h2", {}, "Deliveries"),
    h("div", { class: "filters" }, ["failed", "dead", "pending", "delivered"].map((s) =>
      h("a", { href: `#/endpoints?state=${s}${q.get("endpoint") ? `&endpoint=${encodeURIComponent(q.get("endpoint"))}` : ""}`,
        class: (q.get("state") || "failed") === s ? "active" : null }, s))),
    h("table", { id: "deliveries" },
      h("tr", {}, h("th", {}, "event"), h("th", {}, "endpoint"), h("th", {}, "state"), h("th", {}, "attempts"), h("th", {}, "last status"), h("th", {}, "next attempt")),
      dl.deliveries.length ? dl.deliveries.map((d) => h("tr", {},
        h("td", { class: "mono" }, d.event_id), h("td", { class: "mono" }, d.endpoint), h("td", {}, d.state),
        h("td", {}, d.attempts), h("td", {}, d.last_status), h("td", {}, d.next_at || "-")))
        : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "none"))),
    h("p", { class: "muted" }, "Also from the command line: sagaflow deliveries replay --endpoint ID --dead"));
}

// ---- router ----

async function route() {
  clearInterval(poll);
  poll = null;
  document.getElementById("updated").textContent = "";
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  try {
    if (path === "/" || path === "") await overview();
    else if (path === "/sagas") await sagaList(query);
    else if (path.startsWith("/saga/")) await sagaPage(decodeURIComponent(path.slice(6)));
    else if (path === "/dead-letters") await deadLetters(query);
    else if (path === "/endpoints") await endpoints(query);
    else show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Overview")));
  } catch (e) {
    failed(e);
  }
}

document.getElementById("search").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = document.getElementById("search-order").value.trim();
  if (id) location.hash = `#/saga/${encodeURIComponent(id)}`;
});
window.addEventListener("hashchange", route);
route();
