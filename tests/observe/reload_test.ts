/**
 * Hot reload: a drill of 20 config swaps (some broken) under steady load, and
 * reloads triggered by changes to the config file.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { startUpstream, type TestServer } from "../helpers/upstream.ts";
import { startGateway, type TestGateway } from "../helpers/gateway.ts";
import { parsePromText, sampleValue } from "./prom_text.ts";

const CHUNKS = 6;
const CHUNK = 512;

/**
 * An upstream that streams CHUNKS chunks of its letter, a little apart, so responses span swaps.
 * A request for `/letters?held` stops after its first chunk until `hold` settles.
 */
function letterUpstream(letter: string, hold: Promise<unknown> = Promise.resolve()): TestServer {
  const bytes = new TextEncoder().encode(letter.repeat(CHUNK));
  return startUpstream((req) => {
    const held = new URL(req.url).search === "?held";
    let sent = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(c) {
          if (sent === CHUNKS) return c.close();
          if (sent > 0) await new Promise((r) => setTimeout(r, 2));
          if (sent === 1 && held) await hold;
          sent++;
          c.enqueue(bytes);
        },
      }),
      { headers: { "x-upstream": letter } },
    );
  });
}

function config(a: TestServer, b: TestServer, target: "a" | "b", watch = "enabled: false"): string {
  return `
listeners: [ { name: public, host: 127.0.0.1, port: 0 } ]
admin: { host: 127.0.0.1, port: 0 }
server: { drain_timeout_s: 5, config_watch: { ${watch} } }
observe: { access_log: { enabled: false } }
upstreams:
  a: { targets: [ { url: "${a.url}" } ] }
  b: { targets: [ { url: "${b.url}" } ] }
routes:
  - { name: letters, match: { path: /letters }, upstream: ${target} }
`;
}

/** Broken in each stage a reload goes through: YAML, schema, cross-references, plan build. */
function broken(kind: number, a: TestServer, b: TestServer): string {
  switch (kind % 4) {
    case 0:
      return "routes: [ { name: x";
    case 1:
      return config(a, b, "a").replace("drain_timeout_s: 5", "drain_timeout_s: soon");
    case 2:
      return config(a, b, "a").replace("upstream: a", "upstream: nowhere");
    default:
      return config(a, b, "b").replace(
        "access_log: { enabled: false }",
        "access_log: { path: no/such/dir/log }",
      );
  }
}

Deno.test("reload drill: 20 swaps (some broken) under load, zero failures, no mixed responses", async () => {
  // One response is held mid-body from before the first swap until after it: at least one
  // is in flight across a swap whatever the timing (the workers' are, most of the time).
  const swapped = Promise.withResolvers<void>();
  const a = letterUpstream("A", swapped.promise);
  const b = letterUpstream("B");
  const g = await startGateway(config(a, b, "a"));
  const heldStarted = performance.now();
  const held = fetch(`${g.url()}/letters?held`).then(async (res) => ({
    letter: res.headers.get("x-upstream"),
    text: await res.text(),
    span: [heldStarted, performance.now()] as [number, number],
  }));
  // It is A's, on the plan before the first swap, once A has it.
  for (let i = 0; i < 1000 && !a.received.some((r) => r.url === "/letters?held"); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const failures: string[] = [];
  const seen = { A: 0, B: 0 };
  const spans: [number, number][] = [];
  /** When each successful reload was asked for, and when it had answered. */
  const swaps: [number, number][] = [];
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const started = performance.now();
      try {
        const res = await fetch(`${g.url()}/letters`);
        const text = await res.text();
        const letter = res.headers.get("x-upstream");
        if (res.status !== 200) failures.push(`status ${res.status}: ${text}`);
        else if (letter !== "A" && letter !== "B") failures.push(`no x-upstream: ${letter}`);
        else if (text !== letter.repeat(CHUNK * CHUNKS)) {
          failures.push(`body not wholly from ${letter}: ${new Set(text)}`);
        } else {
          seen[letter]++;
          spans.push([started, performance.now()]);
        }
      } catch (e) {
        failures.push(String(e));
      }
    }
  };
  const workers = Array.from({ length: 6 }, worker);
  let good = 0;
  let bad = 0;
  try {
    for (let i = 1; i <= 20; i++) {
      const isBroken = i % 3 === 0;
      const text = isBroken ? broken(i, a, b) : config(a, b, good % 2 === 0 ? "b" : "a");
      await Deno.writeTextFile(g.file, text);
      const asked = performance.now();
      const res = await fetch(`${g.admin}/reload`, { method: "POST" });
      const result = await res.json();
      if (isBroken) {
        assertEquals(res.status, 422, JSON.stringify(result));
        assertEquals(result.ok, false);
        assertOk(result.errors.length > 0);
        bad++;
      } else {
        assertEquals([res.status, result.ok], [200, true], JSON.stringify(result));
        assertEquals(result.hash, g.gw.plan.hash);
        swaps.push([asked, performance.now()]);
        good++;
        swapped.resolve();
      }
      await new Promise((r) => setTimeout(r, 40));
    }
  } finally {
    stop = true;
    swapped.resolve();
    await Promise.all(workers);
  }
  try {
    assertEquals(failures, []);
    assertOk(seen.A > 0 && seen.B > 0, `both versions served: ${JSON.stringify(seen)}`);
    // Some responses were streaming while their plan was swapped out, and still came whole:
    // the held one always (asked for before the first swap, released after it answered).
    const h = await held;
    assertEquals([h.letter, h.text], ["A", "A".repeat(CHUNK * CHUNKS)]);
    const [from, to] = swaps[0]!;
    assertOk(h.span[0] < from && to < h.span[1], "the held request spans the first swap");
    const across = spans.filter(([s, e]) => swaps.some(([from, to]) => s < from && to < e)).length;
    console.log(`drill: ${seen.A + seen.B} requests, ${across} in flight across a swap`);
    const f = parsePromText(await (await fetch(`${g.admin}/metrics`)).text());
    assertEquals(sampleValue(f, "gateway_config_reloads_total", { result: "success" }), good);
    assertEquals(sampleValue(f, "gateway_config_reloads_total", { result: "failure" }), bad);
    assertEquals(bad, 6);
    assertEquals(
      sampleValue(f, "gateway_requests_total", { route: "letters", status_class: "2xx" }),
      seen.A + seen.B + 1,
    );
  } finally {
    await g.close();
    await a.close();
    await b.close();
  }
});

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function letterOf(g: TestGateway): Promise<string | null> {
  const res = await fetch(`${g.url()}/letters`);
  await res.body?.cancel();
  return res.headers.get("x-upstream");
}

Deno.test("config watch: a saved change reloads; broken saves keep the old plan; no-op saves do nothing", async () => {
  const a = letterUpstream("A");
  const b = letterUpstream("B");
  // Writes a test makes back to back are one burst only if no gap between them reaches the
  // debounce: 200 ms was within a loaded machine's stalls. The quiet periods that check
  // nothing reloads are longer than the debounce.
  const watch = "enabled: true, debounce_ms: 1000";
  const quietly = () => new Promise((r) => setTimeout(r, 1_500));
  const g = await startGateway(config(a, b, "a", watch));
  try {
    assertEquals(await letterOf(g), "A");

    await Deno.writeTextFile(g.file, config(a, b, "b", watch));
    await until("the watched change to be loaded", async () => (await letterOf(g)) === "B");
    assertEquals(g.gw.reloads.ok, 1);

    await Deno.writeTextFile(g.file, "routes: [ {");
    await until("the broken save to be tried", () => g.gw.reloads.failed === 1);
    assertEquals(await letterOf(g), "B");

    // An editor's save: a temporary file renamed over the config.
    await Deno.writeTextFile(`${g.dir}/.gateway.yaml.swp`, config(a, b, "a", watch));
    await Deno.rename(`${g.dir}/.gateway.yaml.swp`, g.file);
    await until("the renamed file to be loaded", async () => (await letterOf(g)) === "A");
    assertEquals(g.gw.reloads.ok, 2);

    // Several writes in quick succession are one reload.
    for (const target of ["b", "a", "b"] as const) {
      await Deno.writeTextFile(g.file, config(a, b, target, watch));
    }
    await until("the burst to be loaded", async () => (await letterOf(g)) === "B");
    await quietly();
    assertEquals(g.gw.reloads.ok, 3);

    // Rewriting the same text, or writing other files in the folder, reloads nothing.
    await Deno.writeTextFile(g.file, config(a, b, "b", watch));
    await Deno.writeTextFile(`${g.dir}/unrelated.txt`, "x");
    await quietly();
    assertEquals([g.gw.reloads.ok, g.gw.reloads.failed], [3, 1]);

    // Turning the watch off in the config stops it.
    await Deno.writeTextFile(g.file, config(a, b, "a", "enabled: false"));
    await until("the watch-off config to be loaded", async () => (await letterOf(g)) === "A");
    await Deno.writeTextFile(g.file, config(a, b, "b", "enabled: false"));
    await quietly();
    assertEquals(await letterOf(g), "A");
  } finally {
    await g.close();
    await a.close();
    await b.close();
  }
});
