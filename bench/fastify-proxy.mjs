// Anchor: @fastify/http-proxy on Node, routing /api/users/* to the upstream.
import Fastify from "fastify";
import proxy from "@fastify/http-proxy";

const app = Fastify({ logger: false });
await app.register(proxy, {
  upstream: "http://127.0.0.1:9001",
  prefix: "/api/users",
  rewritePrefix: "",
});
await app.listen({ host: "127.0.0.1", port: 9400 });
