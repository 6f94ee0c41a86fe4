/** Bundles edge/worker.ts with esbuild and runs it in workerd through miniflare. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";

/** Bundles edge/worker.ts for workerd into `dir`/worker.mjs and returns that path. */
export async function bundleWorker(dir: string): Promise<string> {
  const scriptPath = join(dir, "worker.mjs");
  await build({
    entryPoints: [fileURLToPath(new URL("../../edge/worker.ts", import.meta.url))],
    outfile: scriptPath,
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    logLevel: "warning",
  });
  return scriptPath;
}

/**
 * With `http`, workerd also listens on 127.0.0.1 on a free port (mf.ready
 * resolves to its URL), for clients that need a real socket.
 */
export async function startWorkerEdge(
  dir: string,
  bindings: Record<string, string>,
  opts: { http?: boolean } = {},
): Promise<Miniflare> {
  const scriptPath = await bundleWorker(dir);
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    // The bundle lives outside the working directory.
    modulesRoot: dir,
    compatibilityDate: "2026-04-01",
    bindings,
    ...(opts.http ? { host: "127.0.0.1", port: 0 } : {}),
  });
  await mf.ready;
  return mf;
}
