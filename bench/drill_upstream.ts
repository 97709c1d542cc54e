/** A drill upstream: answers `GET /health` and everything else with its name. Run as its own process. */
const [port, name] = Deno.args;
Deno.serve(
  { hostname: "127.0.0.1", port: Number(port), onListen: () => console.log("ready") },
  (req) => new Response(new URL(req.url).pathname === "/health" ? "healthy" : name),
);
