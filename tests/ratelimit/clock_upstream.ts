/**
 * An upstream in its own process that records when each request arrived
 * (wall clock, ms), so that timing seen "at the upstream" is not skewed by the
 * test's own event loop. `GET /arrivals` returns the list. Prints its port.
 * `GET /stall` returns the longest its event loop stalled (ms) since the last
 * such request: an arrival stamped after a stall is late by the stall, not by
 * the gateway.
 */
import { stallMonitor } from "./stall_monitor.ts";

const arrivals: number[] = [];
const stalls = stallMonitor();
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
  const now = performance.timeOrigin + performance.now();
  const path = new URL(req.url).pathname;
  if (path === "/arrivals") return Response.json(arrivals);
  if (path === "/stall") {
    const longest = stalls.longest();
    stalls.reset();
    return Response.json(longest);
  }
  arrivals.push(now);
  return new Response("ok");
});
console.log((server.addr as Deno.NetAddr).port);
