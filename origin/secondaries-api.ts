/**
 * HTTP API of the primary side (see openapi.json):
 *   GET    /v1/secondaries            the secondaries, with the serial each serves
 *   PUT    /v1/secondaries/{id}       add or replace one {dns, zones?, key?, link?}
 *   DELETE /v1/secondaries/{id}
 *   GET    /v1/zones/{zone}/transfer  {zone, allowTransfer, secondaries}
 *   PUT    /v1/zones/{zone}/transfer  {allowTransfer: ["192.0.2.1", "10.0.0.0/8", "key:NAME"]}
 * Writes need the write token. What the API sets is saved in DATA/primary.json
 * (temp file, fsync, rename) and restored at start over the command line's.
 */

import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { type Context, Hono } from "hono";
import { z } from "zod";
import { issueReason } from "../core/issue.ts";
import { requireBearer } from "./auth.ts";
import { type Secondaries, type SecondaryInput, secondarySchema } from "./secondaries.ts";
import type { Store } from "./store.ts";
import { AclError, parseAllowList, type TransferAcl } from "./xfr-acl.ts";

/** What the API has set, as saved. */
export interface PrimaryState {
  allowTransfer: Record<string, string[]>;
  secondaries: SecondaryInput[];
}

export async function loadPrimaryState(dataDir: string): Promise<PrimaryState | undefined> {
  try {
    return JSON.parse(await readFile(join(dataDir, "primary.json"), "utf8")) as PrimaryState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(
      `${join(dataDir, "primary.json")}: ${(err as Error).message}; fix or remove it`,
    );
  }
}

async function savePrimaryState(dataDir: string, state: PrimaryState): Promise<void> {
  const file = join(dataDir, "primary.json");
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, "w");
  try {
    await fh.writeFile(JSON.stringify(state, null, 2));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

export interface PrimaryRoutesOptions {
  store: Store;
  token: string;
  dataDir: string;
  acl: TransferAcl;
  secondaries: Secondaries;
  /** What was set over the API (restored at start), kept up to date here. */
  state: PrimaryState;
}

const transferBody = z.strictObject({ allowTransfer: z.array(z.string()).max(1000) });

function invalid(c: Context, field: string, reason: string) {
  return c.json({ error: "invalid input", field, reason }, 400);
}

export function primaryRoutes(o: PrimaryRoutesOptions): Hono {
  const app = new Hono();
  const auth = requireBearer(o.token);
  const save = () => savePrimaryState(o.dataDir, o.state);

  app.get("/v1/secondaries", (c) => c.json({ secondaries: o.secondaries.list() }));

  app.put("/v1/secondaries/:id", auth, async (c) => {
    const body = await c.req.json().catch(() => undefined);
    if (typeof body !== "object" || body === null)
      return invalid(c, "body", "expected a JSON object {dns, zones?, key?, link?}");
    const parsed = secondarySchema.safeParse({ ...body, id: c.req.param("id") });
    if (!parsed.success) {
      const { field, reason } = issueReason(parsed.error.issues[0]!);
      return invalid(c, field, reason);
    }
    try {
      o.secondaries.add(parsed.data);
    } catch (err) {
      return invalid(c, "key", (err as Error).message);
    }
    o.state.secondaries = [
      ...o.state.secondaries.filter((s) => s.id !== parsed.data.id),
      { ...(body as object), id: parsed.data.id } as SecondaryInput,
    ];
    await save();
    return c.json({ secondary: parsed.data }, 200);
  });

  app.delete("/v1/secondaries/:id", auth, async (c) => {
    const id = c.req.param("id");
    if (!o.secondaries.remove(id))
      return c.json(
        {
          error: "not found",
          reason: `secondary "${id}" is not configured; see GET /v1/secondaries`,
        },
        404,
      );
    o.state.secondaries = o.state.secondaries.filter((s) => s.id !== id);
    await save();
    return c.json({ removed: id });
  });

  const zoneOf = (c: Context) => {
    const zone = c.req.param("zone")!.toLowerCase().replace(/\.$/, "");
    const state = o.store.findState(zone);
    return state?.zone.name === zone ? zone : undefined;
  };
  const notFound = (c: Context) =>
    c.json(
      {
        error: "not found",
        reason: `zone "${c.req.param("zone")}" not found; create it with PUT /v1/zones/${c.req.param("zone")}`,
      },
      404,
    );

  app.get("/v1/zones/:zone/transfer", (c) => {
    const zone = zoneOf(c);
    if (!zone) return notFound(c);
    return c.json({
      zone,
      allowTransfer: o.acl.list(zone),
      allowTransferAllZones: o.acl.list("*"),
      secondaries: o.secondaries
        .list()
        .filter((s) => !s.zones || s.zones.includes(zone))
        .map((s) => s.id),
    });
  });

  app.put("/v1/zones/:zone/transfer", auth, async (c) => {
    const zone = zoneOf(c);
    if (!zone) return notFound(c);
    const parsed = transferBody.safeParse(await c.req.json().catch(() => undefined));
    if (!parsed.success)
      return invalid(
        c,
        "allowTransfer",
        'expected {"allowTransfer": ["192.0.2.1", "10.0.0.0/8", "key:NAME"]}',
      );
    let items: string[];
    try {
      items = parseAllowList(parsed.data.allowTransfer, "allowTransfer");
    } catch (err) {
      if (err instanceof AclError) return invalid(c, "allowTransfer", err.message);
      throw err;
    }
    o.acl.set(zone, items);
    o.state.allowTransfer[zone] = items;
    await save();
    return c.json({ zone, allowTransfer: items });
  });

  return app;
}
