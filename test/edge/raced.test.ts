import { describe, expect, it } from "vitest";
import { raced } from "../../edge/cache.ts";

/** The outcome of `race(a, b)` and the promise turn in which an `await` of it resumes. */
async function observe(
  race: (a: Promise<string>, b: Promise<never>) => Promise<string>,
  make: () => { a: Promise<string>; b: Promise<never>; settle: () => void },
): Promise<{ turn: number; outcome: string }> {
  // A chain that counts promise turns, one per turn, from before the race.
  let turn = 0;
  const spin = (): void => {
    if (turn < 50) {
      turn++;
      void Promise.resolve().then(spin);
    }
  };
  void Promise.resolve().then(spin);
  const { a, b, settle } = make();
  let seen = { turn: -1, outcome: "" };
  const p = race(a, b);
  void (async () => {
    try {
      const value = await p;
      seen = { turn, outcome: `value ${value}` };
    } catch (err) {
      seen = { turn, outcome: `error ${(err as Error).message}` };
    }
  })();
  settle();
  await new Promise((r) => setImmediate(r));
  return seen;
}

describe("raced", () => {
  it("settles as Promise.race does, in the same promise turns", async () => {
    const never = () => new Promise<never>(() => {});
    const cases: Record<
      string,
      () => { a: Promise<string>; b: Promise<never>; settle: () => void }
    > = {
      "work already answered": () => ({ a: Promise.resolve("ok"), b: never(), settle: () => {} }),
      "work answers later": () => {
        let done!: (v: string) => void;
        const a = new Promise<string>((r) => {
          done = r;
        });
        return { a, b: never(), settle: () => done("late") };
      },
      "work fails": () => ({
        a: Promise.reject(new Error("refused")),
        b: never(),
        settle: () => {},
      }),
      "the timeout first": () => {
        let fire!: (e: Error) => void;
        const b = new Promise<never>((_, reject) => {
          fire = reject;
        });
        return { a: new Promise<string>(() => {}), b, settle: () => fire(new Error("timeout")) };
      },
      "a chained answer": () => ({
        a: Promise.resolve("x")
          .then((v) => `${v}y`)
          .then((v) => `${v}z`),
        b: never(),
        settle: () => {},
      }),
    };
    for (const [name, make] of Object.entries(cases)) {
      const ours = await observe(raced, make);
      const theirs = await observe((a, b) => Promise.race([a, b]), make);
      expect(ours, name).toEqual(theirs);
      expect(ours.turn, name).toBeGreaterThan(0);
    }
  });
});
