/**
 * HTTP-date (RFC 9110 §5.6.7), strictly: IMF-fixdate, and the obsolete
 * rfc850-date and asctime-date a recipient still accepts. Anything else
 * (a one-digit hour, "UTC", a missing comma, dashes in an IMF-fixdate) is
 * invalid, which for Expires means already expired (RFC 9111 §5.3).
 */
import { memoized } from "../core/memo.ts";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAY = "(Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAY = "(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MONTH = `(${MONTHS.join("|")})`;
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";

const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * An IMF-fixdate's milliseconds, null when `v` is none (or names no real
 * instant), parsed once per value: a cache reads the Date of every response
 * and revalidation, and all those of one second are the same text. Kept
 * only up to the fixed form's 29 characters (a longer value is no
 * IMF-fixdate, and may be a client's If-Modified-Since).
 */
const imfFixdate = memoized(
  (v: string): number | null => {
    const m = IMF_FIXDATE.exec(v);
    return m ? (utc(Number(m[4]), m[3]!, Number(m[2]), m[5]!, m[6]!, m[7]!) ?? null) : null;
  },
  4_096,
  29,
);

/** Milliseconds since the epoch, or undefined when absent or not an HTTP-date. */
export function parseHttpDate(
  value: string | null | undefined,
  now = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  // An IMF-fixdate matches neither obsolete form, valid or not: falling
  // through to them for one that names no real instant changes nothing.
  const imf = imfFixdate(v);
  if (imf !== null) return imf;
  let m = RFC850_DATE.exec(v);
  if (m) {
    // §5.6.7: a two-digit year more than 50 years ahead is the most recent past one.
    const thisYear = new Date(now).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(m[4]);
    if (year > thisYear + 50) year -= 100;
    return utc(year, m[3]!, Number(m[2]), m[5]!, m[6]!, m[7]!);
  }
  m = ASCTIME_DATE.exec(v);
  if (m) return utc(Number(m[7]), m[2]!, Number(m[3]!.trim()), m[4]!, m[5]!, m[6]!);
  return undefined;
}

function utc(year: number, month: string, day: number, h: string, mi: string, s: string) {
  const mon = MONTHS.indexOf(month);
  const ms = Date.UTC(year, mon, day, Number(h), Number(mi), Number(s));
  const d = new Date(ms);
  // Reject what Date.UTC would roll over (31 Feb, 25:00).
  if (d.getUTCDate() !== day || d.getUTCMonth() !== mon || d.getUTCHours() !== Number(h)) {
    return undefined;
  }
  if (Number(mi) > 59 || Number(s) > 60) return undefined;
  return ms;
}
