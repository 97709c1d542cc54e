/**
 * leaky_bucket mode shape through the gateway: a burst arrives at once, the
 * upstream sees it at the fixed rate, and what overflows the queue is refused.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { baseConfig, startGateway } from "../helpers/gateway.ts";
import { startRedis } from "../helpers/redis.ts";
import { limitedConfig } from "./helpers.ts";
import { stallMonitor } from "./stall_monitor.ts";

const INTERVAL_MS = 100; // rate 10 per 1s

/** The clock upstream, in its own process. */
async function startClockUpstream() {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./clock_upstream.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const url = `http://127.0.0.1:${Number(value!.trim())}`;
  return {
    url,
    arrivals: async (): Promise<number[]> => await (await fetch(`${url}/arrivals`)).json(),
    /** The longest stall of its event loop (ms) since the last ask. */
    stall: async (): Promise<number> => await (await fetch(`${url}/stall`)).json(),
    close: async () => {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

async function shapedBurst(store: string) {
  const up = await startClockUpstream();
  const g = await startGateway(baseConfig(limitedConfig(
    up.url,
    `  - name: fragile
    match: { path: /f }
    upstream: a
    rate_limit: { algorithm: leaky_bucket, mode: shape, rate: 10, per: 1s, queue: 5, key: route }
  - { name: warm, match: { path: /warm }, upstream: a }
`,
    store,
  )));
  // The gateway's timers run in this process, the arrivals are stamped in the upstream's.
  const local = stallMonitor();
  try {
    // A pooled upstream connection, so that the first release pays no connect time.
    await (await fetch(`${g.url()}/warm`)).body?.cancel();
    const warm = (await up.arrivals()).length;
    await up.stall();
    local.reset();
    // The burst comes from another process (curl), so that this test's event loop,
    // which also runs the gateway, does not delay the first release.
    const out = await new Deno.Command("curl", {
      args: [
        "-sS",
        "--parallel",
        "--parallel-immediate",
        "--parallel-max",
        "9",
        "-w",
        "%{http_code} %header{retry-after}\\n",
        ...Array.from({ length: 9 }, () => ["-o", "/dev/null", `${g.url()}/f`]).flat(),
      ],
    }).output();
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    const refused = lines.filter((l) => l.startsWith("429 "));
    for (const l of refused) assertOk(Number(l.slice(4)) >= 1, l);
    assertEquals(lines.length - refused.length, lines.filter((l) => l.startsWith("200")).length);
    const stalledMs = Math.max(local.longest(), await up.stall());
    return {
      admitted: lines.length - refused.length,
      arrivals: (await up.arrivals()).slice(warm),
      stalledMs,
    };
  } finally {
    local.stop();
    await g.close();
    await up.close();
  }
}

/**
 * The releases sit on a grid of 1/rate: each one at its slot, never early (the
 * upstream never sees more than the rate), late only by timer jitter (a late
 * timer does not push the later slots back). The grid's origin is estimated as
 * the median of `arrival − k × interval`, since any single arrival, the first
 * included, may be the late one on a loaded machine.
 */
function assertSpaced(arrivals: number[]) {
  const origins = arrivals.map((t, k) => t - k * INTERVAL_MS).sort((a, b) => a - b);
  const origin = origins[Math.floor(origins.length / 2)]!;
  const offsets = arrivals.map((t) => Math.round(t - origin));
  offsets.forEach((offset, k) => {
    assertOk(offset >= k * INTERVAL_MS - 25, `release ${k} early: ${offsets}`);
    assertOk(offset <= k * INTERVAL_MS + 400, `release ${k} late: ${offsets}`);
  });
}

/**
 * The arrivals of a shaped burst during which neither event loop stalled over 100 ms. A
 * stall fires every release timer due during it at its end: several late releases bias the
 * median origin, and the others look early (seen: 'release 0 early: -201,-100,399,400,400,400'
 * when the machine froze for 400 ms). A stall among the nine decisions spreads them over
 * more than one 100 ms slot, and the queue drains meanwhile (seen: 8 admitted). Such a burst
 * says nothing of the shaping and is run again, up to five times.
 */
async function undisturbedBurst(store: string): Promise<number[]> {
  for (let attempt = 1;; attempt++) {
    const { admitted, arrivals, stalledMs } = await shapedBurst(store);
    if (stalledMs <= 100) {
      assertEquals(admitted, 6); // the first at once, 5 queued
      assertEquals(arrivals.length, 6);
      return arrivals;
    }
    console.log(`burst ${attempt}: an event loop stalled ${stalledMs} ms; not a measurement`);
    assertOk(attempt < 5, `every burst was disturbed by a stall (the last: ${stalledMs} ms)`);
  }
}

Deno.test("shape (memory): the upstream sees a burst at 1/rate, the queue's overflow gets 429", async () => {
  assertSpaced(await undisturbedBurst(""));
});

Deno.test("shape (redis): the same smoothing with the queue kept in Redis", async () => {
  const redis = await startRedis();
  try {
    assertSpaced(
      await undisturbedBurst(
        `store: { kind: redis, redis: { url: "${redis.url}", timeout_ms: 2000 } }`,
      ),
    );
  } finally {
    await redis.close();
  }
});
