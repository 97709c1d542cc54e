/**
 * Ports for servers a test starts as another process (a gateway, redis-server,
 * HAProxy), which must be named before that process binds them.
 *
 * A port the kernel hands out for `port: 0` comes from the ephemeral range, the
 * same range every outgoing connection takes its local port from: with the suite's
 * hundreds of connections in flight, one of them can take the port between the
 * test choosing it and the child binding it ("Address already in use", seen in
 * CI). So ports are drawn at random from below that range, where only explicit
 * binds go, checked free by binding, and never handed out twice.
 *
 * `deno test --parallel` runs test files in isolates of their own, each with its
 * own copy of this module: two could draw the same port before either child had
 * bound it (a gateway process takes a second or two to). A port handed out is
 * therefore also claimed by a file created exclusively in a folder every isolate
 * (and every concurrent run on the machine) shares; claims older than an hour
 * are stale and taken over.
 */

const handedOut = new Set<number>();
const [LOW, HIGH] = belowEphemeralRange();
const CLAIMS = `${Deno.env.get("TMPDIR") ?? "/tmp"}/gateway-test-ports`;
const STALE_MS = 3_600_000;

// The claims of this isolate go with it; a run that dies leaves them to go stale.
globalThis.addEventListener("unload", () => {
  for (const port of handedOut) {
    try {
      Deno.removeSync(`${CLAIMS}/${port}`);
    } catch {
      // Already taken over, or gone.
    }
  }
});

/** A loopback port nothing listens on now, kept out of outgoing connections' way. */
export function freePort(): number {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port) || !bindable(port) || !claim(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${LOW}-${HIGH}`);
}

/** Claims `port` for this run: false if another isolate or run holds a fresh claim. */
function claim(port: number): boolean {
  const file = `${CLAIMS}/${port}`;
  Deno.mkdirSync(CLAIMS, { recursive: true });
  try {
    Deno.openSync(file, { write: true, createNew: true }).close();
    return true;
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const mtime = statOrNull(file)?.mtime?.getTime() ?? 0;
  if (Date.now() - mtime < STALE_MS) return false;
  // A stale claim: renamed away by one taker only, then claimed afresh.
  const taken = `${file}.stale-${crypto.randomUUID()}`;
  try {
    Deno.renameSync(file, taken);
  } catch {
    return false;
  }
  Deno.removeSync(taken);
  return claim(port);
}

function statOrNull(file: string): Deno.FileInfo | null {
  try {
    return Deno.statSync(file);
  } catch {
    return null;
  }
}

/** `n` distinct free ports. */
export function freePorts(n: number): number[] {
  return Array.from({ length: n }, freePort);
}

function bindable(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** [10000, first ephemeral port), from Linux's setting; its default where unreadable. */
function belowEphemeralRange(): [number, number] {
  let first = 32768;
  try {
    first = Number(Deno.readTextFileSync("/proc/sys/net/ipv4/ip_local_port_range").split(/\s+/)[0]);
  } catch {
    // not Linux, or not readable: the default
  }
  return first > 12000 ? [10000, first] : [1024, first];
}
