/**
 * An upstream in its own process that records when each request arrived
 * (wall clock, ms), so that timing seen "at the upstream" is not skewed by the
 * test's own event loop. `GET /arrivals` returns the list. Prints its port.
 */
const arrivals: number[] = [];
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
  const now = performance.timeOrigin + performance.now();
  if (new URL(req.url).pathname === "/arrivals") return Response.json(arrivals);
  arrivals.push(now);
  return new Response("ok");
});
console.log((server.addr as Deno.NetAddr).port);
