/** Calls to the origin's HTTP API with its write token, for tests that drive it directly. */

export interface ApiAnswer {
  status: number;
  json: Record<string, unknown>;
}

/**
 * `method path` on the origin at `base` with `token`; an object body is sent
 * as JSON, a string as is with content type `type` (a zone file: `text/dns`).
 */
export async function originApi(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  type = "application/json",
): Promise<ApiAnswer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": type },
    ...(body !== undefined && { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}
