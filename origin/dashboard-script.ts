/**
 * The dashboard's inline script, plain browser JavaScript: follows
 * /dashboard/events (EventSource), recolours the nodes of the latest change
 * as their receipts arrive, redraws the CDF of time-to-fresh, and sends the
 * form's change with the token typed in. Acks by serial are cumulative per
 * zone, as the origin's receipts count them.
 */
export const DASHBOARD_SCRIPT = `
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
const dots = new Map();
for (const g of document.querySelectorAll("#topology .node")) dots.set(g.dataset.id, g);
const recent = data.recent.map((c) => ({ ...c, pending: new Set(c.pending) }));
let current = recent.at(-1) ?? null;
let drawQueued = false;

function covers(c, r) {
  if (r.changeId !== undefined) return r.changeId === c.changeId;
  return !c.explicit && r.zone === c.zone && r.serial >= c.serial;
}

function paint() {
  if (!current) return;
  document.getElementById("change").textContent =
    current.changeId + " (" + current.zone + " serial " + current.serial + ")";
  let synced = 0;
  let total = 0;
  for (const [id, g] of dots) {
    if (id === data.origin) continue;
    const inSync = current.synced[id] !== undefined;
    const pending = current.pending.has(id);
    g.classList.toggle("insync", inSync);
    g.classList.toggle("pending", pending && !inSync);
    if (inSync || pending) total++;
    if (inSync) synced++;
  }
  const times = Object.values(current.synced).map((t) => t - current.committedAt);
  const done = synced === total && total > 0;
  const p = document.getElementById("progress");
  p.textContent = synced + " / " + total + " in sync" +
    (done ? ", converged in " + Math.max(0, ...times) + " ms" : "");
  p.dataset.state = done ? "converged" : "pending";
  queueDraw();
}

function queueDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => { drawQueued = false; drawCdf(); });
}

function drawCdf() {
  const svg = document.getElementById("cdf");
  const samples = recent.flatMap((c) =>
    Object.values(c.synced).map((t) => Math.max(0, t - c.committedAt))).sort((a, b) => a - b);
  const pred = data.predicted;
  const W = 360, H = 220, L = 40, B = 30, T = 10, R = 10;
  const maxX = Math.max(1, samples.at(-1) ?? 0, pred ? pred.boundMs : 0) * 1.05;
  const x = (t) => L + (t / maxX) * (W - L - R);
  const y = (p) => H - B - p * (H - B - T);
  let s = '<line class="axis" x1="' + L + '" y1="' + y(0) + '" x2="' + (W - R) + '" y2="' + y(0) + '"/>' +
    '<line class="axis" x1="' + L + '" y1="' + y(0) + '" x2="' + L + '" y2="' + y(1) + '"/>' +
    '<text x="' + L + '" y="' + (H - 12) + '">0</text>' +
    '<text x="' + (W - R - 60) + '" y="' + (H - 12) + '">' + Math.round(maxX) + ' ms</text>' +
    '<text x="4" y="' + (y(1) + 4) + '">1</text><text x="4" y="' + (y(0.5) + 4) + '">0.5</text>';
  if (pred) {
    s += '<path class="predicted" d="' + pred.points.map(([t, p], i) =>
      (i ? "L" : "M") + x(t).toFixed(1) + " " + y(p).toFixed(1)).join(" ") + '"/>';
    s += '<line class="bound" x1="' + x(pred.boundMs) + '" y1="' + y(0) + '" x2="' + x(pred.boundMs) +
      '" y2="' + y(1) + '"/><text x="' + (x(pred.boundMs) - 70) + '" y="' + (T + 10) + '">bound ' +
      Math.round(pred.boundMs) + ' ms</text>';
  }
  if (samples.length) {
    let d = "M" + x(0) + " " + y(0);
    samples.forEach((t, i) => {
      d += " L" + x(t).toFixed(1) + " " + y(i / samples.length).toFixed(1) +
        " L" + x(t).toFixed(1) + " " + y((i + 1) / samples.length).toFixed(1);
    });
    s += '<path class="measured" d="' + d + '"/>';
  }
  s += '<text x="' + (L + 24) + '" y="' + (H - 12) + '">' + samples.length +
    ' receipts' + (pred ? " (dashed: predicted)" : "") + '</text>';
  svg.innerHTML = s;
}

const events = new EventSource("/dashboard/events");
events.addEventListener("change", (e) => {
  const c = JSON.parse(e.data);
  current = { ...c, synced: {}, pending: new Set(c.pending) };
  for (const id of c.insync) current.synced[id] = c.committedAt;
  recent.push(current);
  if (recent.length > 20) recent.shift();
  paint();
});
events.addEventListener("receipt", (e) => {
  const r = JSON.parse(e.data);
  for (const c of recent) {
    if (c.synced[r.node] === undefined && c.pending.has(r.node) && covers(c, r)) {
      c.synced[r.node] = Math.max(r.at, c.committedAt);
      c.pending.delete(r.node);
    }
  }
  paint();
});
events.addEventListener("node", () => location.reload());

document.getElementById("push").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const out = document.getElementById("result");
  out.textContent = "writing...";
  const path = "/v1/zones/" + encodeURIComponent(f.get("zone")) + "/rrsets/" +
    encodeURIComponent(f.get("name")) + "/" + f.get("type");
  try {
    const res = await fetch(path, {
      method: "PUT",
      headers: { authorization: "Bearer " + f.get("token"), "content-type": "application/json" },
      body: JSON.stringify({ ttl: Number(f.get("ttl")), data: [f.get("value")] }),
    });
    const body = await res.json();
    out.textContent = res.ok ? body.changeId + " (serial " + body.serial + ")" :
      "HTTP " + res.status + ": " + (body.reason ?? body.error);
    out.dataset.changeId = res.ok ? body.changeId : "";
  } catch (err) {
    out.textContent = String(err);
  }
});
paint();
drawCdf();
`;
