/**
 * Dependencies a config may not use are loaded by `import()` when it does, so
 * that a gateway without them does not carry them (about 16 MB of RSS
 * together). They must stay out of the static import graph of the entry
 * points, and inside the full graph, which is what `deno compile` embeds.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const OPTIONAL = ["ioredis", "jose", "re2js", "@opentelemetry/api"];
const ENTRY_POINTS = ["main.ts", "lib/cluster/worker_main.ts"];

interface Dependency {
  code?: { specifier: string };
  isDynamic?: boolean;
}

interface ModuleGraph {
  modules: { specifier: string; dependencies?: Dependency[] }[];
  npmPackages: Record<string, unknown>;
}

async function moduleGraph(entry: string): Promise<ModuleGraph> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${ROOT}${entry}`],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertOk(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Every module `entry` loads before any of its code runs (dynamic imports not followed). */
function staticClosure(graph: ModuleGraph, entry: string): Set<string> {
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const queue = [new URL(entry, `file://${ROOT}`).href];
  while (queue.length > 0) {
    const specifier = queue.pop()!;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    for (const d of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (d.code && !d.isDynamic) queue.push(d.code.specifier);
    }
  }
  return seen;
}

for (const entry of ENTRY_POINTS) {
  Deno.test(`${entry}: optional dependencies are outside the static graph, inside the full one`, async () => {
    const graph = await moduleGraph(entry);
    const loadedAtStart = [...staticClosure(graph, entry)];
    for (const pkg of OPTIONAL) {
      const statically = loadedAtStart.filter((s) => s.startsWith(`npm:${pkg}@`));
      assertEquals(statically, [], `${pkg} is imported statically`);
      const embedded = Object.keys(graph.npmPackages).some((p) => p.startsWith(`${pkg}@`));
      assertOk(embedded, `${pkg} is missing from the graph of ${entry}`);
    }
  });
}
