// stratad's dashboard: charts of the server's own history (GET /api/v1/history, so a reload
// of the page loses nothing), refreshed every second, with the time state, top talkers, poll
// intervals and client classes. Data goes into the page with textContent only.
"use strict";

const CHARTS = {
  "c-traffic": { series: ["requests", "replies"] },
  "c-drops": { series: ["bad_format", "auth_failed", "declined", "restricted", "rate_limited", "kod", "kernel_drops"] },
  "c-bytes": { series: ["bytes_in_v4", "bytes_in_v6", "bytes_out_v4", "bytes_out_v6"] },
  "c-unique": { series: ["unique_1m", "unique_1h", "unique_1d"] },
  "c-processing": { series: ["processing_p50", "processing_p99"], scale: 1e-3 },
  "c-cost": { series: ["cost_month", "top_share"], y2: ["top_share"] },
};
const TILES = ["requests", "replies", "rate_limited", "kod", "kernel_drops", "unique_1m", "unique_1d",
               "processing_p99", "top_share", "cost_month"];

const view = { range: 3600, step: 1 };
const rows = {};     // chart id -> [[Date, v, ...], ...]
const graphs = {};   // chart id -> Dygraph
let lastSecond = 0;  // the newest second the 1 s view holds
let latest = {};     // series -> newest known value
let updates = 0;

function key() {
  const m = /(?:^|[#&])key=([^&]+)/.exec(location.hash);
  if (m) {
    localStorage.setItem("strata-api-key", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  return localStorage.getItem("strata-api-key");
}

async function api(path) {
  const headers = {};
  const k = key();
  if (k) headers["X-API-Key"] = k;
  const r = await fetch(path, { headers, cache: "no-store" });
  const doc = await r.json();
  if (!r.ok) throw new Error(doc.error || r.statusText);
  return doc;
}

function status(text, bad) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.classList.toggle("bad", !!bad);
}

function fmt(v, digits) {
  if (v === null || v === undefined || Number.isNaN(v)) return "-";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + " G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + " M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + " k";
  return v.toFixed(digits === undefined ? (a >= 100 || v === Math.round(v) ? 0 : 2) : digits);
}

function tileText(name, v) {
  if (v === null || v === undefined) return "-";
  if (name === "processing_p99") return fmt(v / 1000, 1) + " us";
  if (name === "top_share") return (100 * v).toFixed(1) + "%";
  if (name === "cost_month") return "$" + fmt(v, 2);
  if (name.startsWith("unique_")) return fmt(Math.round(v));
  return fmt(v);
}

// The history reply's points as chart rows, per chart.
function toRows(doc, id) {
  const chart = CHARTS[id];
  const byName = {};
  for (const s of doc.series) byName[s.name] = s.mean;
  const out = [];
  for (let i = 0; i < doc.points; i++) {
    const row = [new Date((doc.start + i * doc.step) * 1000)];
    for (const name of chart.series) {
      const v = byName[name] ? byName[name][i] : null;
      row.push(v === null || v === undefined ? null : v * (chart.scale || 1));
    }
    out.push(row);
  }
  return out;
}

// dygraphs' legend plugin writes HTML with style attributes even with legend "never": without
// it the charts need no inline style (our legend is below each chart).
function withoutLegendPlugin() {
  if (Dygraph.Plugins && Dygraph.Plugins.Legend)
    Dygraph.PLUGINS = Dygraph.PLUGINS.filter((p) => p !== Dygraph.Plugins.Legend);
}

function draw(id) {
  const chart = CHARTS[id];
  const data = rows[id].length ? rows[id] : [[new Date(), ...chart.series.map(() => null)]];
  if (!graphs[id]) {
    const series = {};
    for (const name of chart.y2 || []) series[name] = { axis: "y2" };
    graphs[id] = new Dygraph(document.getElementById(id), data, {
      labels: ["time", ...chart.series],
      series,
      axes: chart.y2 ? { y2: { independentTicks: true, axisLabelFormatter: (v) => (100 * v).toFixed(0) + "%" } } : {},
      legend: "never",
      labelsSeparateLines: false,
      labelsKMB: true,
      connectSeparatedPoints: false,
      strokeWidth: 1.5,
      animatedZooms: false,
    });
    legend(id);
  } else {
    graphs[id].updateOptions({ file: data });
  }
}

// Our own legend under each chart: dygraphs' writes style attributes, which the page's
// Content-Security-Policy (default-src 'self', no inline styles) refuses.
function legend(id) {
  const colours = graphs[id].getColors();
  const box = document.createElement("div");
  box.className = "legend";
  CHARTS[id].series.forEach((name, i) => {
    const item = document.createElement("span");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = colours[i];
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(name + (CHARTS[id].y2 && CHARTS[id].y2.includes(name) ? " (right)" : "")));
    box.appendChild(item);
  });
  document.getElementById(id).after(box);
}

function remember(doc) {
  for (const s of doc.series) {
    for (let i = s.mean.length - 1; i >= 0; i--) {
      if (s.mean[i] !== null) { latest[s.name] = s.mean[i]; break; }
    }
  }
  for (const name of TILES) {
    const el = document.getElementById("t-" + name);
    if (el) el.textContent = tileText(name, latest[name]);
  }
}

async function loadAll() {
  const doc = await api(`/api/v1/history?since=${-view.range}&step=${view.step}`);
  for (const id in CHARTS) {
    rows[id] = toRows(doc, id);
    draw(id);
  }
  lastSecond = doc.start + (doc.points - 1) * doc.step;
  if (view.step === 1) remember(doc);
}

// Every second: the newest seconds (the tiles, and the 1 s view's new points).
async function tick() {
  try {
    const since = view.step === 1 && lastSecond ? lastSecond : -10;
    const doc = await api(`/api/v1/history?since=${since}&step=1`);
    remember(doc);
    if (view.step === 1) {
      const first = doc.start;
      for (const id in CHARTS) {
        const fresh = toRows(doc, id);
        const keep = rows[id].filter((r) => r[0].getTime() < first * 1000);
        rows[id] = keep.concat(fresh).slice(-view.range);
        draw(id);
      }
      lastSecond = doc.start + (doc.points - 1);
    }
    updates++;
    document.body.dataset.updates = String(updates);
    status("updated " + new Date().toISOString().slice(11, 19) + " UTC");
  } catch (e) {
    status("cannot read stratad: " + e.message, true);
  }
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function barCell(tr, share) {
  const td = cell(tr, "");
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.style.width = Math.max(1, Math.round(200 * share)) + "px";
  td.appendChild(bar);
}

function fill(id, list, make) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const [i, item] of list.entries()) {
    const tr = document.createElement("tr");
    make(tr, item, i);
    body.appendChild(tr);
  }
}

async function slow() {
  try {
    const s = await api("/api/v1/stats");
    const t = s.time;
    document.getElementById("time-source").textContent = t.source + (t.synchronised ? "" : " (unsynchronised)");
    document.getElementById("time-stratum").textContent = String(t.stratum);
    document.getElementById("time-leap").textContent = ["none", "+1 s", "-1 s", "unsynchronised"][t.leap] || String(t.leap);
    document.getElementById("time-refid").textContent = t.refid;
    document.getElementById("time-root_delay").textContent = (1000 * t.root_delay).toFixed(3) + " ms";
    document.getElementById("time-root_dispersion").textContent = (1000 * t.root_dispersion).toFixed(3) + " ms";
    document.getElementById("uptime").textContent = (s.uptime / 3600).toFixed(2) + " h";
    document.getElementById("workers").textContent = String(s.workers);
    const clusters = s.poll_interval_clusters || [];
    const gaps = clusters.reduce((a, c) => a + c.gaps, 0) || 1;
    fill("polls", clusters, (tr, c) => { cell(tr, c.range); cell(tr, String(c.gaps), "n"); barCell(tr, c.gaps / gaps); });
    const c = s.counters;
    const classes = [
      ["NTPv4", c.requests_v4], ["NTPv3", c.requests_v3], ["NTPv2", c.requests_v2], ["NTPv1", c.requests_v1],
      ["symmetric active", c.requests_mode1], ["NTPv1 mode 0", c.requests_mode0],
      ["NTS", c.nts_requests], ["authenticated (MAC)", c.authenticated_replies],
    ];
    const all = (c.requests_v1 + c.requests_v2 + c.requests_v3 + c.requests_v4) || 1;
    fill("classes", classes, (tr, [name, n]) => { cell(tr, name); cell(tr, String(n || 0), "n"); barCell(tr, (n || 0) / all); });
    const cost = latest.cost_month;
    const ranked = (tr, r, i) => {
      cell(tr, String(i + 1));
      cell(tr, r.key);
      cell(tr, String(r.count), "n");
      cell(tr, (100 * r.share).toFixed(2) + "%", "n");
      cell(tr, cost === undefined || cost === null ? "-" : "$" + fmt(12 * cost * r.share, 2), "n");
    };
    fill("top", (await api("/api/v1/top?window=1m&limit=10")).rows, ranked);
    // With [networks]: the hour's heaviest prefixes by network and by country.
    document.getElementById("networks-box").hidden = !s.networks;
    if (s.networks) {
      fill("networks", (await api("/api/v1/top?window=1h&group=network&limit=10")).rows, ranked);
      fill("countries", (await api("/api/v1/top?window=1h&group=country&limit=10")).rows, ranked);
    }
    // Dynamic blocks: what the rules and the operator have blocked, and the warnings.
    const b = await api("/api/v1/blocks");
    document.getElementById("blocks-summary").textContent =
      `(${b.blocks.length} of at most ${b.max_active}; ${b.placed} placed, ${b.expired} expired since start)`;
    fill("blocks", b.blocks.slice(0, 20), (tr, x) => {
      cell(tr, x.prefix);
      cell(tr, x.action);
      cell(tr, x.by === "hand" ? "hand" : x.rule);
      cell(tr, String(x.hits), "n");
      cell(tr, span(x.remaining_s), "n");
      cell(tr, x.reason);
    });
    fill("block-warnings", b.warnings.slice(0, 10), (tr, w) => {
      cell(tr, w.prefix);
      cell(tr, fmt(w.rate, 1), "n");
      cell(tr, w.rule);
      cell(tr, span(Math.max(0, b.now - w.at)) + " ago", "n");
    });
  } catch (e) {
    status("cannot read stratad: " + e.message, true);
  }
}

function span(s) {
  if (s >= 86400) return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
  if (s >= 3600) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  if (s >= 60) return Math.floor(s / 60) + "m " + (s % 60) + "s";
  return s + "s";
}

function errors(text) {
  const pre = document.getElementById("errors");
  pre.hidden = false;
  pre.textContent += text + "\n";
}

window.addEventListener("error", (e) => errors("error: " + e.message));
window.addEventListener("unhandledrejection", (e) => errors("error: " + (e.reason && e.reason.message)));

document.addEventListener("DOMContentLoaded", () => {
  withoutLegendPlugin();
  for (const b of document.querySelectorAll("#ranges button")) {
    b.addEventListener("click", async () => {
      document.querySelectorAll("#ranges button").forEach((x) => x.classList.toggle("on", x === b));
      view.range = Number(b.dataset.range);
      view.step = Number(b.dataset.step);
      await loadAll();
    });
  }
  loadAll().then(() => { tick(); slow(); }).catch((e) => status("cannot read stratad: " + e.message, true));
  setInterval(tick, 1000);
  setInterval(slow, 2000);
  // Minute and hour views: the whole range again every 30 s (the point in progress moves).
  setInterval(() => { if (view.step !== 1) loadAll().catch(() => {}); }, 30000);
});
