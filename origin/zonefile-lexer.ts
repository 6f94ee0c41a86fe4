/**
 * The lexical layer of RFC 1035 §5.1 master files: splits the text into
 * entries (one per record or directive; parentheses join lines), tokens
 * (quoted or not), strips `;` comments and decodes `\X` and `\DDD` escapes.
 */

export class ZoneFileError extends Error {
  override readonly name = "ZoneFileError";
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

export interface Token {
  /** The token as written (escapes not decoded), without quotes. */
  readonly text: string;
  /** The octets it stands for, escapes decoded (RFC 1035 §5.1). */
  readonly bytes: Uint8Array;
  readonly quoted: boolean;
  readonly escaped: boolean;
  readonly line: number;
}

export interface Entry {
  readonly line: number;
  /** RFC 1035 §5.1: a line starting with blank space reuses the previous owner. */
  readonly blankOwner: boolean;
  readonly tokens: Token[];
}

const BLANK = new Set([" ", "\t", "\r"]);
/** Characters that end an unquoted token. */
const DELIMITERS = new Set([" ", "\t", "\r", "\n", ";", "(", ")", '"']);

export function lexZoneFile(text: string): Entry[] {
  const entries: Entry[] = [];
  let line = 1;
  let depth = 0;
  let parenLine = 0;
  let lineStartsBlank = BLANK.has(text[0] ?? "");
  let current: { line: number; blankOwner: boolean; tokens: Token[] } | undefined;
  const push = (token: Token) => {
    current ??= { line: token.line, blankOwner: lineStartsBlank, tokens: [] };
    current.tokens.push(token);
  };

  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\n") {
      line++;
      i++;
      if (depth === 0) {
        if (current) entries.push(current);
        current = undefined;
        lineStartsBlank = BLANK.has(text[i] ?? "");
      }
    } else if (BLANK.has(c)) {
      i++;
    } else if (c === ";") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "(") {
      if (depth === 0) parenLine = line;
      depth++;
      i++;
    } else if (c === ")") {
      if (depth === 0) throw new ZoneFileError(line, 'found ")" without an opening "("');
      depth--;
      i++;
    } else {
      const quoted = c === '"';
      const read = readToken(text, quoted ? i + 1 : i, quoted, line);
      push({ ...read, quoted, line });
      i = read.end;
    }
  }
  if (depth > 0) throw new ZoneFileError(parenLine, '"(" is never closed; add the matching ")"');
  if (current) entries.push(current);
  return entries;
}

/** Reads one token from `start`; for a quoted one, up to and past the closing quote. */
function readToken(
  text: string,
  start: number,
  quoted: boolean,
  line: number,
): { text: string; bytes: Uint8Array; escaped: boolean; end: number } {
  const bytes: number[] = [];
  let escaped = false;
  let i = start;
  for (;;) {
    const c = text[i];
    if (c === undefined || (c === "\n" && quoted)) {
      if (quoted)
        throw new ZoneFileError(
          line,
          'quoted string is not closed on this line; add the closing "',
        );
      break;
    }
    if (quoted ? c === '"' : DELIMITERS.has(c)) break;
    if (c === "\\") {
      escaped = true;
      i = readEscape(text, i + 1, line, bytes);
      continue;
    }
    const cp = text.codePointAt(i)!;
    const char = String.fromCodePoint(cp);
    bytes.push(...Buffer.from(char, "utf8"));
    i += char.length;
  }
  return {
    text: text.slice(start, i),
    bytes: Uint8Array.from(bytes),
    escaped,
    end: quoted ? i + 1 : i,
  };
}

/** RFC 1035 §5.1: `\DDD` is the octet with decimal value DDD, `\X` is X itself. */
function readEscape(text: string, i: number, line: number, out: number[]): number {
  const digits = text.slice(i, i + 3);
  if (/^\d{3}$/.test(digits)) {
    const value = Number(digits);
    if (value > 255) {
      throw new ZoneFileError(line, `escape "\\${digits}" is over 255; \\DDD names one octet`);
    }
    out.push(value);
    return i + 3;
  }
  const cp = text.codePointAt(i);
  if (cp === undefined || cp === 10) {
    throw new ZoneFileError(
      line,
      'a "\\" at the end of a line escapes nothing; write "\\\\" for a backslash',
    );
  }
  const char = String.fromCodePoint(cp);
  out.push(...Buffer.from(char, "utf8"));
  return i + char.length;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** A character-string's text; the store keeps TXT and CAA values as UTF-8 text. */
export function tokenString(token: Token): string {
  try {
    return UTF8.decode(token.bytes);
  } catch {
    throw new ZoneFileError(
      token.line,
      `"${token.text}" holds octets that are not UTF-8 text; only UTF-8 strings are stored`,
    );
  }
}
