/**
 * The origin's side of the propagation fabric, its HTTP routes: the node
 * registry, receipts (`GET /v1/changes/{id}`), acks from nodes and operator
 * purges. Publishing events on the bus is fabric-outbox.ts.
 */

import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import type { Clock } from "../core/clock.ts";
import { zoneKey } from "../core/http.ts";
import { issueReason } from "../core/issue.ts";
import { isInZone, tryNormaliseName } from "../core/names.ts";
import type { PurgeEvent } from "../core/purge.ts";
import { dnsName } from "../core/records.ts";
import { serialGt } from "../core/serial.ts";
import { type NodeCredentials, requireBearer, tokenMatches } from "./auth.ts";
import type { Outbox } from "./fabric-outbox.ts";
import type { Registry } from "./fabric-registry.ts";
import type { Receipts } from "./receipts.ts";
import type { Relay } from "./relay.ts";
import type { Store } from "./store.ts";

const nodeBody = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "an id is lower-case letters, digits, '-' or '_'"),
  tier: z.string().min(1).max(32),
  address: z.string().min(1).max(256),
  parent: z.string().max(63).optional(),
  /** For edges without a bus connection (Workers): the origin relays purges to this URL. */
  purgeUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Bearer token of that endpoint (default: the nodes' token). */
  purgeToken: z.string().min(8).optional(),
});

const serialAck = z.strictObject({
  zone: dnsName,
  serial: z
    .number()
    .int("serial must be a whole number")
    .min(0, "serial must be an unsigned 32-bit integer")
    .max(2 ** 32 - 1, "serial must be an unsigned 32-bit integer"),
});
const purgeAck = z.strictObject({ changeId: z.string().min(1).max(200) });
/** Acks of several nodes in one request (POST /v1/acks); each item carries its node's token. */
const MAX_BATCH = 10_000;
const batchItem = z.object({
  node: nodeBody.shape.id,
  token: z.string().min(1).max(200),
});
const batchBody = z.strictObject({ acks: z.array(z.unknown()).min(1).max(MAX_BATCH) });

type AckOutcome =
  | { status: 200; body: { acked: unknown } }
  | { status: 400 | 403 | 404; body: object };

const purgeBody = z
  .strictObject({
    /** The zone to purge in; absent with `all`: every zone. */
    zone: dnsName.optional(),
    /** Owner names (each purges every cached answer naming it). */
    names: z.array(dnsName).min(1).optional(),
    /** Surrogate keys / cache tags, as the reads' Surrogate-Key header lists them. */
    keys: z.array(z.string().min(1)).min(1).optional(),
    all: z.literal(true).optional(),
    mode: z.enum(["hard", "soft"]).default("hard"),
  })
  .refine((b) => [b.names, b.keys, b.all].filter((x) => x !== undefined).length <= 1, {
    message: 'give at most one of "names", "keys" or "all"',
  })
  .refine((b) => b.zone !== undefined || b.all === true, {
    message: '"zone" is required unless "all" is true',
    path: ["zone"],
  });

export interface FabricOptions {
  store: Store;
  receipts: Receipts;
  /** The write token: operator purges. */
  token: string;
  /** The nodes' token (the write token works too): registry and acks. */
  nodeToken: string;
  clock: Clock;
  /** Where purges go; none: purges are refused (no bus to carry them). */
  outbox: Outbox | undefined;
  /** Delivers purges to nodes registered with a purgeUrl; none without a bus. */
  relay: Relay | undefined;
  /** The public key (base64 SPKI Ed25519) that verifies every event the origin publishes. */
  purgeKey: string;
  /** Each node's own token: it registers and acks for that node only. */
  credentials: NodeCredentials;
  /** Registrations, journaled. */
  registry: Registry;
}

export function fabricRoutes(o: FabricOptions): Hono {
  const { store, receipts, token, nodeToken, clock, outbox, relay, purgeKey, credentials } = o;
  const { registry } = o;
  const app = new Hono();
  // The launcher's (or operator's) tokens: any node; a node's own token: that node only.
  const operator = requireBearer([nodeToken, token]);
  const ownNode = requireBearer([nodeToken, token], (c, given) =>
    credentials.valid(c.req.param("id") ?? "", given),
  );
  const registering = requireBearer([nodeToken, token], async (c, given) => {
    const body: unknown = await c.req.raw
      .clone()
      .json()
      .catch(() => undefined);
    const id = (body as { id?: unknown } | undefined)?.id;
    return typeof id === "string" && credentials.valid(id, given);
  });
  const writeAuth = requireBearer(token);

  app.get("/v1/nodes", (c) => c.json({ nodes: receipts.nodes() }));

  // Public: nodes verify purge events with it (core/signing.ts); it cannot sign.
  app.get("/v1/purge-key", (c) => c.json({ algorithm: "Ed25519", publicKey: purgeKey }));

  // Issues node {id} its own token (a new one each time: the earlier stops working).
  app.post("/v1/nodes/:id/token", operator, (c) => {
    const id = c.req.param("id");
    const ok = nodeBody.shape.id.safeParse(id);
    if (!ok.success) {
      return c.json(
        { error: "invalid input", field: "id", reason: ok.error.issues[0]!.message },
        400,
      );
    }
    return c.json({ id, token: credentials.issue(id) }, 201);
  });

  app.post("/v1/nodes", registering, async (c) => {
    const body = await parse(c.req.raw, nodeBody);
    if (!body.ok) return c.json(body.error, 400);
    const { purgeUrl, purgeToken, ...node } = body.value;
    if (purgeUrl !== undefined) {
      if (!relay) {
        return c.json(
          {
            error: "no bus",
            field: "purgeUrl",
            reason: "this origin runs without a purge bus, so it cannot relay purges",
          },
          409,
        );
      }
      await relay.attach({ id: node.id, purgeUrl, token: purgeToken ?? nodeToken });
    }
    await registry.register(node);
    return c.json(
      {
        registered: node.id,
        relayed: purgeUrl !== undefined,
        purgeKey: { algorithm: "Ed25519", publicKey: purgeKey },
        leaseMs: receipts.leaseMs,
      },
      201,
    );
  });

  // Renews the node's lease (acks renew it too); a node that stops renewing turns LOST.
  app.post("/v1/nodes/:id/lease", ownNode, (c) => {
    const id = c.req.param("id");
    if (!receipts.renew(id)) return c.json(unknownNode(id), 404);
    return c.json({ renewed: id, leaseMs: receipts.leaseMs });
  });

  // Forgets the node and revokes its token: it can neither register again nor ack.
  app.delete("/v1/nodes/:id", operator, async (c) => {
    const id = c.req.param("id");
    const revoked = credentials.revoke(id);
    if (!(await registry.deregister(id)) && !revoked) return c.json(unknownNode(id), 404);
    await relay?.detach(id);
    return c.json({ deregistered: id, revoked });
  });

  /** One node's ack, already authorised for node `id`: what both ack routes answer. */
  const takeAck = (id: string, value: unknown): AckOutcome => {
    // Two shapes; the one with changeId acks an operator purge.
    const byId = value !== null && typeof value === "object" && "changeId" in value;
    const body = byId ? check(value, purgeAck) : check(value, serialAck);
    if (!body.ok) return { status: 400, body: body.error };
    const ack = body.value;
    if (!receipts.node(id)) return { status: 404, body: unknownNode(id) };
    if ("changeId" in ack) {
      if (!receipts.ackChange(id, ack.changeId)) {
        return {
          status: 404,
          body: {
            error: "change not found",
            field: "changeId",
            reason: `no change "${ack.changeId}"`,
          },
        };
      }
      return { status: 200, body: { acked: ack } };
    }
    const state = store.findState(ack.zone);
    // A zone deleted meanwhile still has its last changes tracked, its deletion among
    // them: a node that applied them acks them (late, as acks may be), else the
    // deletion could never converge.
    const serial =
      state?.zone.name === ack.zone ? state.zone.serial : receipts.latestSerial(ack.zone);
    if (serial === undefined) {
      return {
        status: 404,
        body: { error: "zone not found", field: "zone", reason: `no zone "${ack.zone}"` },
      };
    }
    // An ack beyond the zone's serial would mark changes in sync before they exist.
    if (serialGt(ack.serial, serial)) {
      return {
        status: 400,
        body: {
          error: "invalid input",
          field: "serial",
          reason: `serial ${ack.serial} is ahead of zone ${ack.zone} at serial ${serial}`,
        },
      };
    }
    receipts.ack(id, ack.zone, ack.serial);
    return { status: 200, body: { acked: ack } };
  };

  app.post("/v1/nodes/:id/acks", ownNode, async (c) => {
    const raw = await readJson(c.req.raw);
    if (!raw.ok) return c.json(raw.error, 400);
    const { status, body } = takeAck(c.req.param("id"), raw.value);
    return c.json(body, status);
  });

  // Many nodes' acks in one request (the nodes of one process, coalesced by
  // core/sync.ts AckBatcher): each item is authorised by its own token and
  // answered as POST /v1/nodes/{node}/acks would answer it alone, in order.
  app.post("/v1/acks", async (c) => {
    const batch = await parse(c.req.raw, batchBody);
    if (!batch.ok) return c.json(batch.error, 400);
    const results = batch.value.acks.map((item, i) => {
      const who = batchItem.safeParse(item);
      if (!who.success) {
        const issue = issueReason(who.error.issues[0]!);
        return {
          status: 400,
          error: "invalid input",
          ...issue,
          field: `acks[${i}].${issue.field}`,
        };
      }
      const { node, token: given, ...ack } = item as { node: string; token: string };
      // The same tokens as the single route: this node's own (what nodes send, so it is
      // tried first: 3 hashes, not 6), or the launcher's. A wrong token pays for both.
      if (!credentials.valid(node, given) && !tokenMatches(given, [nodeToken, token])) {
        return {
          status: 403,
          error: "forbidden",
          reason: `the token of acks[${i}] is not node "${node}"'s nor the nodes' token`,
        };
      }
      const outcome = takeAck(node, ack);
      return { status: outcome.status, ...outcome.body };
    });
    return c.json({ results });
  });

  // An operator's purge, by name, surrogate key, zone or everything: one event per zone.
  app.post("/v1/purge", writeAuth, async (c) => {
    const body = await parse(c.req.raw, purgeBody);
    if (!body.ok) return c.json(body.error, 400);
    const p = body.value;
    const field = p.keys ? "keys" : "names";
    if (!outbox) {
      return c.json(
        {
          error: "no bus",
          reason: "this origin runs without a purge bus; caches learn changes by TTL and polling",
        },
        409,
      );
    }
    const zones = p.zone !== undefined ? [p.zone] : store.zones().map((z) => z.zone.name);
    const purges: { zone: string; changeId: string; serial: number }[] = [];
    for (const zone of zones) {
      const state = store.findState(zone);
      if (state?.zone.name !== zone) {
        return c.json(
          { error: "zone not found", field: "zone", reason: `zone "${zone}" not found` },
          404,
        );
      }
      // A zone alone (no names, keys or all) means the whole zone.
      const named = p.keys ?? p.names;
      const keys = named ?? [zoneKey(zone)];
      const bad = named ? keys.findIndex((k) => !keyInZone(k, zone)) : -1;
      if (bad >= 0) {
        const at = `${field}.${bad}`;
        const reason = `"${keys[bad]}" is not a name in zone ${zone} (nor "${zoneKey(zone)}"): a purge cannot reach other zones`;
        return c.json({ error: "invalid input", field: at, reason }, 400);
      }
      const event: PurgeEvent = {
        changeId: `prg_${clock.now().toString(36)}_${randomBytes(5).toString("hex")}`,
        zone,
        serial: state.zone.serial,
        keys,
        mode: p.mode === "hard" ? "invalidate" : "soft",
        ts: clock.now(),
        explicit: true,
      };
      receipts.track({
        changeId: event.changeId,
        zone,
        serial: event.serial,
        ts: event.ts,
        explicit: true,
      });
      outbox.push(event);
      purges.push({ zone, changeId: event.changeId, serial: event.serial });
    }
    return c.json({ purges }, 202);
  });

  app.get("/v1/changes/:id", (c) => {
    const status = receipts.status(c.req.param("id"));
    if (!status) {
      return c.json(
        {
          error: "change not found",
          reason: `no change "${c.req.param("id")}": it never existed or is older than the receipts kept`,
        },
        404,
      );
    }
    return c.json(status);
  });

  return app;
}

function unknownNode(id: string) {
  return {
    error: "node not found",
    reason: `node "${id}" is not registered; register it with POST /v1/nodes`,
  };
}

type Parsed<T> =
  | { ok: true; value: T }
  | { ok: false; error: { error: string; field: string; reason: string } };

async function readJson(req: Request): Promise<Parsed<unknown>> {
  try {
    return { ok: true, value: await req.json() };
  } catch {
    return {
      ok: false,
      error: { error: "invalid input", field: "body", reason: "the body is not valid JSON" },
    };
  }
}

function check<T>(json: unknown, schema: z.ZodType<T>): Parsed<T> {
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, error: { error: "invalid input", ...issueReason(result.error.issues[0]!) } };
}

async function parse<T>(req: Request, schema: z.ZodType<T>): Promise<Parsed<T>> {
  const json = await readJson(req);
  return json.ok ? check(json.value, schema) : json;
}

/** A purge key a zone's events may carry: "zone:<zone>", or a name in the zone. */
function keyInZone(key: string, zone: string): boolean {
  if (key === zoneKey(zone)) return true;
  const name = tryNormaliseName(key);
  return name !== undefined && isInZone(name, zone);
}
