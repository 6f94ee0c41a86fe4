/**
 * Domain names as the project stores them: lower-cased, no trailing dot,
 * validated against RFC 1035 §2.3.4 (labels <= 63 octets, name <= 255 octets
 * in wire form). The root is the empty string.
 */

export class NameError extends Error {
  override readonly name = "NameError";
}

const LABEL = /^(\*|[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)$/;

/** Normalises and validates a name; throws NameError naming what is wrong. */
export function normaliseName(input: string): string {
  if (typeof input !== "string") throw new NameError("name must be a string");
  let name = input.trim().toLowerCase();
  if (name === "." || name === "") return "";
  if (name.endsWith(".")) name = name.slice(0, -1);
  const labels = name.split(".");
  // RFC 1035 §3.1: wire length is sum(1 + len(label)) + 1 for the root.
  let wire = 1;
  for (const [i, label] of labels.entries()) {
    if (label.length === 0) throw new NameError(`name "${input}" has an empty label`);
    if (label.length > 63) {
      throw new NameError(
        `label "${label.slice(0, 20)}..." in "${input}" is longer than 63 octets`,
      );
    }
    if (!LABEL.test(label)) {
      throw new NameError(
        `label "${label}" in "${input}" may hold only letters, digits, "-" and "_" (and not start or end with "-")`,
      );
    }
    if (label === "*" && i !== 0) {
      throw new NameError(
        `"*" may only be the leftmost label, as in "*.${labels.slice(i + 1).join(".")}"`,
      );
    }
    wire += label.length + 1;
  }
  if (wire > 255) throw new NameError(`name "${input}" is ${wire} octets in wire form, over 255`);
  return name;
}

/** Returns the normalised name, or undefined when it is not valid. */
export function tryNormaliseName(input: string): string | undefined {
  try {
    return normaliseName(input);
  } catch {
    return undefined;
  }
}

/** True when `name` equals `zone` or lies below it. Both must be normalised. */
export function isInZone(name: string, zone: string): boolean {
  if (zone === "") return true;
  return name === zone || name.endsWith(`.${zone}`);
}

/** The name with its leftmost label removed ("" for a single label). */
export function parentName(name: string): string {
  const dot = name.indexOf(".");
  return dot < 0 ? "" : name.slice(dot + 1);
}

/** Presentation form with the trailing dot, as dig prints it. */
export function fqdn(name: string): string {
  return name === "" ? "." : `${name}.`;
}
