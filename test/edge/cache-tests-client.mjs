/**
 * Runs every test of the `http-cache-tests` suite against a base URL with
 * the suite's own client, as its cli.mjs does, and prints the results as
 * JSON. One request per connection: a client reusing a connection the
 * proxy has just closed after a pause would see a reset that is no
 * cache's doing. Usage: node cache-tests-client.mjs <suite dir> <base URL>
 */
import http from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [suiteDir, base] = process.argv.slice(2);
const load = (path) => import(pathToFileURL(join(suiteDir, path)).href);
const fetch = createRequire(join(suiteDir, "package.json"))("node-fetch");
const agent = new http.Agent({ keepAlive: false });
const { runTests, getResults } = await load("client/runner.mjs");
const tests = (await load("tests/index.mjs")).default;
tests.push((await load("tests/surrogate-control.mjs")).default);
await runTests(tests, (url, init) => fetch(url, { ...init, agent }), false, base);
process.stdout.write(JSON.stringify(getResults()));
