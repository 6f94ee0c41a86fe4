/** Bundles edge/worker.ts with esbuild and runs it in workerd through miniflare. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";

export async function startWorkerEdge(
  dir: string,
  bindings: Record<string, string>,
): Promise<Miniflare> {
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
  const mf = new Miniflare({
    modules: true,
    scriptPath,
    // The bundle lives outside the working directory.
    modulesRoot: dir,
    compatibilityDate: "2026-04-01",
    bindings,
  });
  await mf.ready;
  return mf;
}
