import { describe, expect, it } from "vitest";
import type { RRset, RRType } from "../../core/records.ts";
import { formatZoneFile, parseZoneFile, ZoneFileError } from "../../origin/zonefile.ts";

const SOA_LINE = "@ 3600 IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300";

function get(rrsets: RRset[], name: string, type: RRType): RRset | undefined {
  return rrsets.find((s) => s.name === name && s.type === type);
}

/** Parses and returns the ZoneFileError it must throw. */
function parseError(text: string, opts?: { origin?: string }): ZoneFileError {
  try {
    parseZoneFile(text, opts);
  } catch (e) {
    if (e instanceof ZoneFileError) return e;
    throw e;
  }
  throw new Error("expected a ZoneFileError");
}

describe("parseZoneFile", () => {
  const sample = `; a sample zone
$ORIGIN example.test.
$TTL 1h
@\tIN\tSOA\tns1.example.test. hostmaster (   ; multi-line SOA
\t\t2024010101 ; serial
\t\t2h 1h 2w   ; refresh retry expire
\t\t5m )       ; minimum
\tIN NS ns1
\tIN NS ns2.example.test.
ns1 300 IN A 192.0.2.53
ns2 IN 300 A 192.0.2.54
www 1h30m A 192.0.2.1
	1h30m A 192.0.2.2
www IN AAAA 2001:db8::1
alias CNAME www
mail MX 10 mx.other.test.
@ MX 20 mail
_sip._tcp SRV 10 60 5060 sip
ptr.example.test. PTR www
`;

  it("reads directives, relative and absolute names, blank owners, TTL units and parentheses", () => {
    const { origin, rrsets, warnings } = parseZoneFile(sample);
    expect(origin).toBe("example.test");
    expect(warnings).toEqual([]);
    expect(get(rrsets, "example.test", "SOA")).toEqual({
      name: "example.test",
      type: "SOA",
      ttl: 3600,
      data: [
        {
          mname: "ns1.example.test",
          rname: "hostmaster.example.test",
          serial: 2024010101,
          refresh: 7200,
          retry: 3600,
          expire: 1209600,
          minimum: 300,
        },
      ],
    });
    expect(get(rrsets, "example.test", "NS")?.data).toEqual([
      "ns1.example.test",
      "ns2.example.test",
    ]);
    expect(get(rrsets, "ns1.example.test", "A")?.ttl).toBe(300);
    expect(get(rrsets, "ns2.example.test", "A")?.ttl).toBe(300);
    expect(get(rrsets, "www.example.test", "A")).toMatchObject({
      ttl: 5400,
      data: ["192.0.2.1", "192.0.2.2"],
    });
    expect(get(rrsets, "www.example.test", "AAAA")?.ttl).toBe(3600);
    expect(get(rrsets, "alias.example.test", "CNAME")?.data).toEqual(["www.example.test"]);
    expect(get(rrsets, "mail.example.test", "MX")?.data).toEqual([
      { preference: 10, exchange: "mx.other.test" },
    ]);
    expect(get(rrsets, "example.test", "MX")?.data).toEqual([
      { preference: 20, exchange: "mail.example.test" },
    ]);
    expect(get(rrsets, "_sip._tcp.example.test", "SRV")?.data).toEqual([
      { priority: 10, weight: 60, port: 5060, target: "sip.example.test" },
    ]);
    expect(get(rrsets, "ptr.example.test", "PTR")?.data).toEqual(["www.example.test"]);
  });

  it("reads quoted TXT strings with escapes, several strings, and semicolons inside quotes", () => {
    const text = `$ORIGIN example.test.
$TTL 60
${SOA_LINE}
t1 TXT "v=spf1 -all"
t2 TXT "say \\"hi\\"" "back\\\\slash" "semi;colon ; not a comment"
t3 TXT "caf\\195\\169" unquoted\\032word ; comment
t4 TXT ( "part one"
         "part two" )
caa CAA 0 issue "letsencrypt.org"
caa CAA 128 iodef mailto:sec@example.test
`;
    const { rrsets } = parseZoneFile(text);
    expect(get(rrsets, "t1.example.test", "TXT")?.data).toEqual([["v=spf1 -all"]]);
    expect(get(rrsets, "t2.example.test", "TXT")?.data).toEqual([
      ['say "hi"', "back\\slash", "semi;colon ; not a comment"],
    ]);
    expect(get(rrsets, "t3.example.test", "TXT")?.data).toEqual([["café", "unquoted word"]]);
    expect(get(rrsets, "t4.example.test", "TXT")?.data).toEqual([["part one", "part two"]]);
    expect(get(rrsets, "caa.example.test", "CAA")?.data).toEqual([
      { flags: 0, tag: "issue", value: "letsencrypt.org" },
      { flags: 128, tag: "iodef", value: "mailto:sec@example.test" },
    ]);
  });

  it("reads CRLF line endings and literal UTF-8 text", () => {
    const text = `$ORIGIN example.test.\r\n$TTL 60\r\n${SOA_LINE}\r\n\r\nt TXT "naïve ☃"\r\n  TXT plain\r\n`;
    expect(get(parseZoneFile(text).rrsets, "t.example.test", "TXT")?.data).toEqual([
      ["naïve ☃"],
      ["plain"],
    ]);
  });

  it("takes the origin and default TTL from options, and class before TTL", () => {
    const text = `${SOA_LINE}\nwww IN 120 A 192.0.2.1\napi A 192.0.2.2\n`;
    const { origin, rrsets } = parseZoneFile(text, { origin: "Example.Test.", defaultTtl: 900 });
    expect(origin).toBe("example.test");
    expect(get(rrsets, "www.example.test", "A")?.ttl).toBe(120);
    expect(get(rrsets, "api.example.test", "A")?.ttl).toBe(900);
  });

  it("uses the last explicit TTL when there is no $TTL (RFC 1035 §5.1)", () => {
    const text = `$ORIGIN example.test.\n${SOA_LINE}\nwww A 192.0.2.1\n`;
    expect(get(parseZoneFile(text).rrsets, "www.example.test", "A")?.ttl).toBe(3600);
  });

  it("$ORIGIN changes the base of relative names, and may itself be relative", () => {
    const text = `$ORIGIN example.test.\n$TTL 60\n${SOA_LINE}\n$ORIGIN sub\nwww A 192.0.2.9\n@ A 192.0.2.8\n`;
    const { rrsets } = parseZoneFile(text);
    expect(get(rrsets, "www.sub.example.test", "A")).toBeDefined();
    expect(get(rrsets, "sub.example.test", "A")).toBeDefined();
  });

  it("gives an RRset with mixed TTLs the minimum and warns with the line", () => {
    const text = `$ORIGIN example.test.\n${SOA_LINE}\nwww 600 A 192.0.2.1\nwww 60 A 192.0.2.2\nwww 60 A 192.0.2.2\n`;
    const { rrsets, warnings } = parseZoneFile(text);
    expect(get(rrsets, "www.example.test", "A")).toMatchObject({
      ttl: 60,
      data: ["192.0.2.1", "192.0.2.2"],
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^line 4: TTL 60 differs from 600 .* line 3; the RRset uses the minimum, 60/,
    );
  });

  const head = `$ORIGIN example.test.\n$TTL 60\n${SOA_LINE}\n`; // lines 1-3
  const errors: [string, string, number, RegExp][] = [
    [
      "an unknown type",
      `${head}a A 192.0.2.1\nb A 192.0.2.1\nc A 192.0.2.1\nx fooo 1\n`,
      7,
      /expected a TTL or a class or a type after the owner name, got "fooo"/,
    ],
    [
      "an unsupported type",
      `${head}h HINFO "pc" "linux"\n`,
      4,
      /got "HINFO" \(supported types: A, AAAA/,
    ],
    ["$INCLUDE", `${head}$INCLUDE other.zone\n`, 4, /\$INCLUDE is not supported/],
    [
      "an unknown directive",
      `${head}$GENERATE 1-9 h$ A 192.0.2.$\n`,
      4,
      /unknown directive "\$GENERATE"/,
    ],
    ["$TTL without a value", `$TTL\n${SOA_LINE}\n`, 1, /\$TTL needs a value/],
    ["a bad $TTL", `$TTL soon\n${SOA_LINE}\n`, 1, /\$TTL must be seconds or a duration like 1h30m/],
    ["a TTL over 2^31-1", `${head}www 2147483648 A 192.0.2.1\n`, 4, /over 2147483647 seconds/],
    ["an unclosed parenthesis", `${head}www TXT ( "a"\n"b"\n`, 4, /"\(" is never closed/],
    ["a stray parenthesis", `${head}www A 192.0.2.1 )\n`, 4, /found "\)" without an opening "\("/],
    [
      "an unclosed quote",
      `${head}www TXT "abc\nmore A 192.0.2.1\n`,
      4,
      /quoted string is not closed/,
    ],
    ["an escape over 255", `${head}www TXT "\\256"\n`, 4, /"\\256" is over 255/],
    ["octets that are not UTF-8", `${head}www TXT "\\255"\n`, 4, /not UTF-8 text/],
    [
      "a TXT string over 255 octets",
      `${head}www TXT "${"x".repeat(256)}"\n`,
      4,
      /at most 255 octets/,
    ],
    ["class CH", `${head}www CH A 192.0.2.1\n`, 4, /class CH is not supported/],
    [
      "a bad IPv4 address",
      `${head}www A 192.0.2.256\n`,
      4,
      /invalid A data: expected an IPv4 address/,
    ],
    [
      "a bad IPv6 address",
      `${head}www AAAA 2001:db8:::1\n`,
      4,
      /invalid AAAA data: expected an IPv6 address/,
    ],
    [
      "too few fields",
      `${head}mail MX 10\n`,
      4,
      /MX takes 2 field\(s\): preference, exchange, got 1/,
    ],
    ["too many fields", `${head}www A 192.0.2.1 192.0.2.2\n`, 4, /A takes 1 field\(s\)/],
    ["a type without data", `${head}www 60 IN\n`, 4, /expected a type after the owner name/],
    [
      "a non-numeric MX preference",
      `${head}mail MX ten mx\n`,
      4,
      /MX preference must be a number, got "ten"/,
    ],
    ["an SRV port out of range", `${head}_s._tcp SRV 1 1 70000 x\n`, 4, /invalid SRV data: port/],
    [
      "a label over 63 octets",
      `${head}${"a".repeat(64)} A 192.0.2.1\n`,
      4,
      /longer than 63 octets/,
    ],
    [
      "a bad character in a name",
      `${head}bad!name A 192.0.2.1\n`,
      4,
      /may hold only letters, digits/,
    ],
    ["an escape in a name", `${head}a\\.b A 192.0.2.1\n`, 4, /escapes in names are not supported/],
    [
      "a relative name with no origin",
      `${SOA_LINE.replace("@", "example.test.")}\nwww A 192.0.2.1\n`,
      1,
      /relative name "ns1" but no origin is known/,
    ],
    [
      "a blank owner with no previous record",
      `$ORIGIN example.test.\n  A 192.0.2.1\n`,
      2,
      /reuses the previous owner name, but there is none/,
    ],
    [
      "no TTL at all",
      `$ORIGIN example.test.\n@ IN SOA ns1 h 1 2 3 4 5\n`,
      2,
      /no TTL for this record/,
    ],
    [
      "no SOA",
      `$ORIGIN example.test.\n$TTL 60\n\nwww A 192.0.2.1\n`,
      4,
      /the zone has no SOA record/,
    ],
    [
      "two SOAs",
      `${head}@ SOA ns1 h 2 2 3 4 5\n`,
      4,
      /a second SOA record \(the first is on line 3\)/,
    ],
    [
      "a name outside the zone",
      `${head}www.other.test. A 192.0.2.1\n`,
      4,
      /"www.other.test." is outside the zone "example.test."/,
    ],
    [
      "a CNAME beside other data",
      `${head}www CNAME x\nwww A 192.0.2.1\n`,
      5,
      /has a CNAME \(line 4\) and A records \(line 5\)/,
    ],
    ["two CNAME records", `${head}www CNAME x\nwww CNAME y\n`, 4, /has 2 CNAME records/],
    ["a quoted name", `${head}www CNAME "x"\n`, 4, /expected a name, got the quoted string "x"/],
    ["a bad CAA tag", `${head}@ CAA 0 is-sue "x"\n`, 4, /invalid CAA data: tag: a CAA tag/],
  ];
  it.each(errors)("rejects %s, naming the line", (_what, text, line, message) => {
    const err = parseError(text);
    expect(err.line).toBe(line);
    expect(err.message).toMatch(new RegExp(`^line ${line}: `));
    expect(err.message).toMatch(message);
  });

  it("requires the SOA at the apex given in the options", () => {
    const err = parseError(`$ORIGIN other.test.\n${SOA_LINE}\n`, { origin: "example.test" });
    expect(err.message).toMatch(/^line 2: the SOA belongs at the zone apex "example.test."/);
  });
});

describe("formatZoneFile", () => {
  const zone = "example.test";
  const soa: RRset<"SOA"> = {
    name: zone,
    type: "SOA",
    ttl: 3600,
    data: [
      {
        mname: "ns1.example.test",
        rname: "hostmaster.example.test",
        serial: 7,
        refresh: 7200,
        retry: 3600,
        expire: 1209600,
        minimum: 300,
      },
    ],
  };
  const all: RRset[] = [
    { name: "www.example.test", type: "A", ttl: 300, data: ["192.0.2.1", "192.0.2.2"] },
    { name: "www.example.test", type: "AAAA", ttl: 3600, data: ["2001:db8::1"] },
    { name: "alias.example.test", type: "CNAME", ttl: 60, data: ["www.example.test"] },
    { name: "ext.example.test", type: "CNAME", ttl: 60, data: ["target.elsewhere.test"] },
    {
      name: zone,
      type: "MX",
      ttl: 3600,
      data: [
        { preference: 10, exchange: "mail.example.test" },
        { preference: 20, exchange: "mx.other.test" },
      ],
    },
    { name: zone, type: "NS", ttl: 86400, data: ["ns1.example.test", "ns.other.test"] },
    {
      name: "_sip._tcp.example.test",
      type: "SRV",
      ttl: 60,
      data: [{ priority: 0, weight: 5, port: 5060, target: "sip.example.test" }],
    },
    { name: "1.example.test", type: "PTR", ttl: 60, data: ["host.example.test"] },
    {
      name: zone,
      type: "CAA",
      ttl: 60,
      data: [
        { flags: 0, tag: "issue", value: "ca.example; account=1" },
        { flags: 128, tag: "iodef", value: 'mailto:"x"\\y@example.test' },
      ],
    },
    { name: "*.wild.example.test", type: "TXT", ttl: 60, data: [["wild"]] },
    { name: "null-mx.example.test", type: "MX", ttl: 60, data: [{ preference: 0, exchange: "" }] },
    { name: "example.test.example.test", type: "A", ttl: 60, data: ["192.0.2.3"] },
  ];

  it("round-trips every type through format and parse", () => {
    const text = formatZoneFile(zone, [...all, soa]);
    expect(text.startsWith("$ORIGIN example.test.\n$TTL 3600\n@\tIN\tSOA\tns1 hostmaster (")).toBe(
      true,
    );
    const parsed = parseZoneFile(text);
    expect(parsed.origin).toBe(zone);
    expect(parsed.warnings).toEqual([]);
    expect(sortSets(parsed.rrsets)).toEqual(sortSets([...all, soa]));
  });

  it("round-trips tricky TXT strings: quotes, backslashes, semicolons, parentheses, non-ASCII, control characters", () => {
    const txt: RRset = {
      name: "t.example.test",
      type: "TXT",
      ttl: 60,
      data: [
        [
          '"quoted"',
          "back\\slash",
          "semi;colon",
          "(paren)",
          "café ☃ 😀",
          "tab\there\nnewline",
          "",
          "\\032",
        ],
        ["x".repeat(255)],
      ],
    };
    const text = formatZoneFile(zone, [soa, txt]);
    expect(text).toContain(
      '"\\"quoted\\"" "back\\\\slash" "semi;colon" "(paren)" "caf\\195\\169 \\226\\152\\131 \\240\\159\\152\\128"',
    );
    expect(text).toMatch(/^[\x20-\x7e\t\n]*$/); // pure ASCII: non-ASCII and controls become \DDD
    expect(sortSets(parseZoneFile(text).rrsets)).toEqual(sortSets([soa, txt]));
  });

  it("writes names relative to the origin, the SOA first and then canonical order", () => {
    const text = formatZoneFile(zone, [...all, soa]);
    const owners = text
      .split("\n")
      .filter((l) => /^[^\t$]/.test(l))
      .map((l) => l.split("\t")[0]);
    expect(owners[0]).toBe("@");
    expect(owners).toContain("_sip._tcp");
    expect(owners.indexOf("1")).toBeLessThan(owners.indexOf("www"));
    expect(text).toContain("alias\t60\tIN\tCNAME\twww\n");
    expect(text).toContain("ext\t60\tIN\tCNAME\ttarget.elsewhere.test.\n");
  });
});

function sortSets(sets: RRset[]): RRset[] {
  return [...sets].sort((a, b) => `${a.name}|${a.type}`.localeCompare(`${b.name}|${b.type}`));
}
