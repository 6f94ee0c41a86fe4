/**
 * Bounded request bodies: the edge buffers what it forwards and what
 * POST /purge parses, so it refuses a body over the limit from its
 * Content-Length before reading, and stops reading once the bytes it has
 * counted pass the limit (a chunked body has no Content-Length).
 */

/** The default limit on a request body the edge reads (1 MiB, like the origin's writes). */
export const DEFAULT_MAX_BODY = 1024 * 1024;

/** The body, or undefined when it is over `max` bytes. */
export async function readBody(
  req: Request,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > max) return undefined;
  if (req.body === null) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel("request body too large");
      return undefined;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.byteLength;
  }
  return body;
}

/** RFC 9110 §15.5.14: 413, saying what the limit is. */
export function tooLarge(id: string, max: number, headers: HeadersInit = {}): Response {
  return Response.json(
    {
      error: "payload too large",
      reason: `${id}: request bodies are limited to ${max} bytes`,
    },
    { status: 413, headers },
  );
}
