/**
 * `propagate <command>`: one binary for every node kind and tool.
 * Each command lives next to the code it runs and exports `main(argv)`.
 */

type Main = (argv: string[]) => Promise<void>;

interface Command {
  help: string;
  load: () => Promise<{ main: Main }>;
  /** A command that prints a report and ends (not a server, whose output is its log). */
  report?: true;
}

const COMMANDS: Record<string, Command> = {
  origin: {
    help: "run an origin authority (HTTP API + authoritative DNS)",
    load: () => import("../origin/main.ts"),
  },
  edge: {
    help: "run an edge HTTP cache (RFC 9111) in front of an origin or edge",
    load: () => import("../edge/main.ts"),
  },
  resolver: {
    help: "run a caching DNS resolver (UDP+TCP) in front of an edge or origin",
    load: () => import("../resolver/main.ts"),
  },
  simulate: {
    help: "simulate a topology's propagation under virtual time, beside the prediction",
    load: () => import("./simulate.ts"),
    report: true,
  },
  measure: {
    help: "measure how long a change takes to reach every node of a running topology",
    load: () => import("./measure.ts"),
    report: true,
  },
  plan: {
    help: "how long a change made now takes to reach DNS servers, and what to do for a deadline",
    load: () => import("./plan.ts"),
    report: true,
  },
  node: {
    help: "run one node of a topology in this process, joined to the fabric",
    load: () => import("./node.ts"),
  },
  up: {
    help: "start every node of a topology (default: infra/topologies/default.json)",
    load: () => import("./up.ts"),
  },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.help}`);
  return `usage: propagate <command> [flags]\n\ncommands:\n${rows.join("\n")}\n\nRun "propagate <command> --help" for its flags.`;
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    console.log(usage());
    return;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`propagate: unknown command "${name}"\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  if (command.report) process.stdout.on("error", endOnClosedPipe);
  try {
    await (await command.load()).main(rest);
  } catch (err) {
    // The reason, not a stack: PROPAGATE_DEBUG=1 shows the stack too.
    const e = err instanceof Error ? err : new Error(String(err));
    console.error(`propagate ${name}: ${process.env.PROPAGATE_DEBUG ? e.stack : e.message}`);
    process.exitCode = 2;
  }
}

/**
 * A reader that stopped early (`propagate simulate --json | head`): the rest
 * of the report has nowhere to go, so the command ends there, quietly and
 * successfully, as ripgrep does, rather than with the stack of an
 * unhandled EPIPE (an 'error' event of stdout, after the write returned).
 */
function endOnClosedPipe(err: NodeJS.ErrnoException): void {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
}
