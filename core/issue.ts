/**
 * A zod validation issue as the field at fault and a reason a person can act
 * on, the one shape every tier's error bodies and error lines use:
 * `{error, field, reason}` over HTTP, `field: reason` in a thrown message.
 *
 * The reason is zod's message (its English locale, or the schema's own), or,
 * for zod/mini, written here: zod/mini loads no message locale (it keeps the
 * edge's Worker bundle small), so its own messages are all "Invalid input".
 */
import type * as z from "zod/mini";

type Issue = z.core.$ZodIssue;

export interface IssueReason {
  /** The field at fault (`event.rrsets[0].ttl`), or the fallback when it is the input as a whole. */
  field: string;
  reason: string;
}

const ARTICLE: Record<string, string> = {
  int: "an integer",
  array: "an array",
  object: "an object",
};

/** `a.b[0].c`, as the origin names fields. */
export function fieldOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    "",
  );
}

/** The issue's field and zod's message; `fallback` names the input as a whole (`body`, `configuration`). */
export function issueReason(issue: Issue, fallback = "body"): IssueReason {
  return { field: fieldOf(issue.path) || fallback, reason: issue.message };
}

/**
 * For zod/mini: the reason written here, naming the field. `known`: the
 * top-level fields the body takes, named when it has others.
 */
export function miniIssueReason(issue: Issue, known: readonly string[] = []): IssueReason {
  const at = fieldOf(issue.path);
  const field = at || "body";
  switch (issue.code) {
    case "invalid_type":
      return {
        field,
        reason: `${field} must be ${ARTICLE[issue.expected] ?? `a ${issue.expected}`}`,
      };
    case "invalid_value":
      return {
        field,
        reason: `${field} must be ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}`,
      };
    case "too_small":
      return {
        field,
        reason:
          issue.origin === "string"
            ? `${field} must not be empty`
            : `${field} must be at least ${issue.minimum}`,
      };
    case "too_big":
      return { field, reason: `${field} must be at most ${issue.maximum}` };
    case "unrecognized_keys": {
      const names = issue.keys.map((k) => JSON.stringify(k)).join(", ");
      const one = issue.keys.length === 1 ? issue.keys[0]! : undefined;
      return {
        field: one === undefined ? field : fieldOf([...issue.path, one]),
        reason:
          `unknown field${one === undefined ? "s" : ""} ${names}` +
          (at ? ` in ${at}` : known.length > 0 ? `; the body takes ${known.join(", ")}` : ""),
      };
    }
    default:
      return { field, reason: issue.message };
  }
}

/** Every issue as one `field: reason` line, for errors that list them all. */
export function issueLines(issues: readonly Issue[], fallback: string): string[] {
  return issues.map((i) => {
    const { field, reason } = issueReason(i, fallback);
    return `${field}: ${reason}`;
  });
}
