/**
 * Waiting on real sockets and processes by a condition, never a fixed sleep: a
 * loaded machine only makes the wait longer, never the test wrong.
 */

/**
 * Polls `check` until it returns a value other than undefined/false, and
 * returns that value; throws naming `what` after `timeoutMs` (a function:
 * computed then, to add what the test saw, such as a daemon's log).
 */
export async function waitFor<T>(
  what: string | (() => string),
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
