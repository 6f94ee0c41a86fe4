/**
 * The dashboard's HTML, rendered on the server: the topology as an SVG graph
 * laid out by depth (origin, then each tier below its parent), each link
 * labelled with its delay model; the progress of the latest change; the
 * CDF panel; the change form. The small script (dashboard-script.ts) only
 * recolours nodes and redraws the CDF as events arrive. Large topologies
 * (1,000 nodes) get smaller dots, labels only in tooltips, and columns that
 * wrap, so the page stays one SVG of a few thousand elements.
 */
import { DASHBOARD_SCRIPT } from "./dashboard-script.ts";
import type { ChangeStatus, NodeInfo } from "./receipts.ts";

/** What the launcher knows and the origin does not: the links and the prediction (dashboard.ts re-exports it). */
export interface DashboardInfo {
  /** Node id -> its link's delay model, described. */
  links?: Record<string, string>;
  /** The predicted CDF of time-to-fresh (ms, probability) and its bound. */
  predicted?: { boundMs: number; points: [number, number][] };
}

export interface PageInput {
  originId: string;
  nodes: NodeInfo[];
  recent: ChangeStatus[];
  zones: string[];
  info?: DashboardInfo;
}

interface Placed {
  id: string;
  tier: string;
  parent?: string;
  x: number;
  y: number;
}

/** Above this many nodes, labels move into tooltips. */
const LABELLED = 60;
/** Rows per column before a tier wraps into another column. */
const MAX_ROWS = 40;

export function layout(originId: string, nodes: readonly NodeInfo[]) {
  const small = nodes.length <= LABELLED;
  const colW = small ? 300 : 44;
  const rowH = small ? 34 : 14;
  const depth = new Map<string, number>([[originId, 0]]);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depthOf = (id: string, seen = new Set<string>()): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    const p = byId.get(id)?.parent;
    // A parent that is not registered (or a loop) hangs the node under the origin.
    const d = p !== undefined && !seen.has(id) ? depthOf(p, seen.add(id)) + 1 : 1;
    depth.set(id, d);
    return d;
  };
  const columns = new Map<number, NodeInfo[]>();
  for (const n of nodes) {
    const d = depthOf(n.id);
    columns.set(d, [...(columns.get(d) ?? []), n]);
  }
  const placed: Placed[] = [{ id: originId, tier: "origin", x: 20, y: 0 }];
  const order = new Map<string, number>([[originId, 0]]);
  let x = 20 + colW;
  let height = rowH;
  for (const d of [...columns.keys()].sort((a, b) => a - b)) {
    // Children near their parents: sort by the parent's row, then by id.
    const col = columns
      .get(d)!
      .sort(
        (a, b) =>
          (order.get(a.parent ?? "") ?? 0) - (order.get(b.parent ?? "") ?? 0) ||
          a.id.localeCompare(b.id),
      );
    col.forEach((n, i) => {
      const sub = Math.floor(i / MAX_ROWS);
      const row = i % MAX_ROWS;
      order.set(n.id, i);
      placed.push({
        id: n.id,
        tier: n.tier,
        ...(n.parent !== undefined && { parent: n.parent }),
        x: x + sub * colW,
        y: row * rowH,
      });
      height = Math.max(height, (row + 1) * rowH);
    });
    x += Math.ceil(col.length / MAX_ROWS) * colW + (small ? 0 : colW);
  }
  // Centre the origin vertically.
  placed[0]!.y = Math.max(0, height / 2 - rowH / 2);
  return { placed, width: x + (small ? 40 : 20), height: height + rowH, small, rowH };
}

export function renderDashboard(p: PageInput): string {
  const { placed, width, height, small, rowH } = layout(p.originId, p.nodes);
  const at = new Map(placed.map((n) => [n.id, n]));
  const links = p.info?.links ?? {};
  const r = small ? 7 : 4;
  const top = 16;
  const lines = placed
    .filter((n) => n.id !== p.originId)
    .map((n) => {
      const from = at.get(n.parent ?? p.originId) ?? placed[0]!;
      const link = links[n.id] ?? "link not described";
      return `<line class="link" x1="${from.x}" y1="${from.y + top}" x2="${n.x}" y2="${n.y + top}"><title>${esc(`${from.id} -> ${n.id}: ${link}`)}</title></line>`;
    });
  const dots = placed.map((n) => {
    const label = small
      ? `<text x="${n.x + r + 4}" y="${n.y + top + 4}">${esc(n.id)}</text>` +
        (n.id !== p.originId && links[n.id]
          ? `<text class="delay" x="${n.x + r + 4}" y="${n.y + top + 15}">${esc(links[n.id]!)}</text>`
          : "")
      : "";
    const cls = n.id === p.originId ? "node origin" : `node tier-${cssName(n.tier)}`;
    return `<g class="${cls}" id="n-${esc(n.id)}" data-id="${esc(n.id)}"><circle cx="${n.x}" cy="${n.y + top}" r="${r}"><title>${esc(`${n.id} (${n.tier})${links[n.id] ? `: ${links[n.id]}` : ""}`)}</title></circle>${label}</g>`;
  });
  const tiers = [...new Set(p.nodes.map((n) => n.tier))];
  const data = {
    origin: p.originId,
    nodes: p.nodes.map((n) => n.id),
    recent: p.recent.map((c) => ({
      changeId: c.changeId,
      zone: c.zone,
      serial: c.serial,
      explicit: c.kind === "purge",
      committedAt: c.committedAt,
      latencies: c.nodes.flatMap((n) => (n.latencyMs !== undefined ? [n.latencyMs] : [])),
      synced: Object.fromEntries(
        c.nodes.flatMap((n) => (n.syncedAt !== undefined ? [[n.id, n.syncedAt]] : [])),
      ),
      pending: c.nodes.filter((n) => n.status === "PENDING").map((n) => n.id),
    })),
    predicted: p.info?.predicted ?? null,
  };
  const zone = p.zones[0] ?? "example.test";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>propagate: ${esc(p.originId)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 8px} h2{font-size:15px;margin:16px 0 6px}
.row{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
.panel{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px}
#graph{overflow:auto;max-height:70vh;max-width:100%}
.link{stroke:#bbb;stroke-width:1}
.node circle{fill:#9e9e9e;stroke:#fff;stroke-width:1}
.node.origin circle{fill:#1565c0}
.node.pending circle{fill:#f9a825}
.node.insync circle{fill:#2e7d32}
.node text{font-size:12px} .node text.delay{font-size:10px;fill:#777}
#progress{font-weight:600} .legend span{display:inline-block;width:10px;height:10px;border-radius:5px;margin:0 4px 0 12px}
form label{display:block;margin:4px 0} input,select{font:inherit;padding:2px 4px}
#cdf .measured{fill:none;stroke:#2e7d32;stroke-width:2} #cdf .predicted{fill:none;stroke:#1565c0;stroke-dasharray:4 3}
#cdf .bound{stroke:#c62828;stroke-dasharray:2 2} #cdf text{font-size:11px} #cdf .axis{stroke:#999}
</style></head>
<body>
<h1>propagate: how a change travels</h1>
<p>origin <b>${esc(p.originId)}</b>, ${p.nodes.length} cache nodes (${tiers.map((t) => `${p.nodes.filter((n) => n.tier === t).length} ${esc(t)}`).join(", ")}).
<span class="legend"><span style="background:#f9a825"></span>pending<span style="background:#2e7d32"></span>in sync</span></p>
<div class="row">
<div class="panel"><h2>Latest change</h2>
<div id="change">no change yet</div><div id="progress">-</div></div>
<div class="panel"><h2>Push a change</h2>
<form id="push">
<label>write token <input name="token" type="password" required autocomplete="off"></label>
<label>zone <input name="zone" value="${esc(zone)}" required></label>
<label>name <input name="name" value="www" required> type <select name="type"><option>A</option><option>AAAA</option><option>TXT</option></select></label>
<label>value <input name="value" value="192.0.2.1" required> TTL <input name="ttl" type="number" value="60" min="0" style="width:6em"></label>
<button type="submit">write</button> <span id="result"></span>
</form></div>
<div class="panel"><h2>Time to fresh, latest ${data.recent.length > 0 ? "changes" : "changes (none yet)"}</h2>
<svg id="cdf" width="360" height="220" role="img" aria-label="CDF of time to fresh"></svg></div>
</div>
<h2>Topology</h2>
<div class="panel" id="graph"><svg id="topology" width="${width}" height="${height + top}" role="img" aria-label="topology">
${lines.join("\n")}
${dots.join("\n")}
</svg></div>
<script id="data" type="application/json">${jsonForScript(data)}</script>
<script>${DASHBOARD_SCRIPT}</script>
<!-- rows ${rowH}px -->
</body></html>`;
}

function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** JSON inside <script>: no "</script>" or "<!--" can close or confuse it. */
function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c");
}

function cssName(s: string): string {
  return s.replace(/[^a-zA-Z0-9_-]/g, "_");
}
