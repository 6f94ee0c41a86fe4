// A simulator worker process started from the TypeScript sources: tsx, as
// bin/propagate.mjs uses, then worker-main.ts. Plain JavaScript so that it
// starts anywhere; shards.ts starts a bundle of worker-main.ts instead when
// it could make one (`prepareWorkers`), which loads in a fraction of this.
import { register } from "tsx/esm/api";

register();
await import("./worker-main.ts");
