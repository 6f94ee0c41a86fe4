/**
 * IP address text forms, without dependencies: the edge's Worker bundle
 * uses these too.
 */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

/** RFC 4291 §2.2 text forms, including "::" and an embedded IPv4 tail. */
export function isIPv6(s: string): boolean {
  if (s.length > 45 || s.length < 2) return false;
  let text = s;
  let groupsNeeded = 8;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    if (!IPV4.test(tail)) return false;
    text = `${text.slice(0, lastColon + 1)}0`;
    groupsNeeded = 7;
  }
  const hex = /^[0-9a-fA-F]{1,4}$/;
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const parts = (h: string) => (h === "" ? [] : h.split(":"));
  const head = parts(halves[0] ?? "");
  const rest = halves.length === 2 ? parts(halves[1] ?? "") : [];
  if (![...head, ...rest].every((g) => hex.test(g))) return false;
  const count = head.length + rest.length;
  return halves.length === 2 ? count < groupsNeeded : count === groupsNeeded;
}

/**
 * RFC 5952 §4 text form: lower case, no leading zeros, the longest run of two
 * or more zero groups (the first of equal runs) as "::", an IPv4 tail kept.
 */
export function canonicalIPv6(s: string): string {
  const lower = s.toLowerCase();
  const tailAt = lower.lastIndexOf(":");
  const v4 = lower.slice(tailAt + 1).includes(".") ? lower.slice(tailAt + 1) : undefined;
  // The IPv4 tail stands for two groups; what comes before it is the hex part.
  const hexPart = v4 ? lower.slice(0, tailAt + 1) : lower;
  const head = v4 && !hexPart.endsWith("::") ? hexPart.slice(0, -1) : hexPart;
  const [left = "", right] = head.split("::");
  const parts = (h: string) => (h === "" ? [] : h.split(":"));
  const l = parts(left);
  const r = right === undefined ? [] : parts(right);
  const width = v4 ? 6 : 8;
  const groups = [...l, ...Array(width - l.length - r.length).fill("0"), ...r].map((g) =>
    Number.parseInt(g, 16).toString(16),
  );
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < groups.length; ) {
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const text = (gs: string[]) => gs.join(":");
  const body =
    best < 0
      ? text(groups)
      : `${text(groups.slice(0, best))}::${text(groups.slice(best + bestLen))}`;
  if (!v4) return body;
  return `${body}${body.endsWith(":") ? "" : ":"}${v4}`;
}
