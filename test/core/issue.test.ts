/** core/issue.ts: one shape, `{field, reason}`, for every zod issue the tiers report. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import * as zm from "zod/mini";
import { fieldOf, issueLines, issueReason, miniIssueReason } from "../../core/issue.ts";

const body = z.object({ rrsets: z.array(z.object({ ttl: z.number() })), mode: z.enum(["a", "b"]) });
const issues = (schema: z.ZodType, input: unknown) => {
  const r = schema.safeParse(input);
  if (r.success) throw new Error("expected a failure");
  return r.error.issues;
};

describe("zod issues", () => {
  it("names fields as the origin does: a.b[0].c", () => {
    expect(fieldOf(["event", "rrsets", 0, "ttl"])).toBe("event.rrsets[0].ttl");
    expect(fieldOf([])).toBe("");
  });

  it("keeps zod's message and falls back to a name for the whole input", () => {
    const [first] = issues(body, { rrsets: [{ ttl: "x" }], mode: "a" });
    expect(issueReason(first!)).toEqual({
      field: "rrsets[0].ttl",
      reason: expect.stringMatching(/number/),
    });
    const [whole] = issues(body, 7);
    expect(issueReason(whole!, "configuration").field).toBe("configuration");
    expect(issueReason(whole!).field).toBe("body");
  });

  it("lists every issue as `field: reason`", () => {
    const lines = issueLines(issues(body, { rrsets: [{ ttl: "x" }], mode: "c" }), "(root)");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^rrsets\[0\]\.ttl: /);
    expect(lines[1]).toMatch(/^mode: /);
  });

  it("words zod/mini's issues itself, naming the field and the fields the body takes", () => {
    const mini = zm.strictObject({
      mode: zm.enum(["hard", "soft"]),
      serial: zm.optional(zm.int()),
    });
    const parse = (input: unknown) => {
      const r = mini.safeParse(input);
      if (r.success) throw new Error("expected a failure");
      return miniIssueReason(r.error.issues[0]!, ["mode", "serial"]);
    };
    expect(parse({ mode: "x" })).toEqual({
      field: "mode",
      reason: 'mode must be "hard" or "soft"',
    });
    expect(parse({ mode: "hard", serial: 1.5 })).toEqual({
      field: "serial",
      reason: "serial must be an integer",
    });
    expect(parse({ mode: "hard", bogus: 1 })).toEqual({
      field: "bogus",
      reason: 'unknown field "bogus"; the body takes mode, serial',
    });
  });
});
