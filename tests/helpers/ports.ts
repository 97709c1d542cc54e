/**
 * Ports for servers a test starts as another process (a gateway, redis-server,
 * HAProxy), which must be named before that process binds them.
 *
 * A port the kernel hands out for `port: 0` comes from the ephemeral range, the
 * same range every outgoing connection takes its local port from: with the suite's
 * hundreds of connections in flight, one of them can take the port between the
 * test choosing it and the child binding it ("Address already in use", seen in
 * CI). So ports are drawn at random from below that range, where only explicit
 * binds go, checked free by binding, and never handed out twice by one process.
 */

const handedOut = new Set<number>();
const [LOW, HIGH] = belowEphemeralRange();

/** A loopback port nothing listens on now, kept out of outgoing connections' way. */
export function freePort(): number {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port) || !bindable(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${LOW}-${HIGH}`);
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
