// Anchor: @fastify/http-proxy on Node, routing /api/users/* to the upstream.
//   node bench/fastify-proxy.mjs MODULES_DIR PORT UPSTREAM_URL
// Packages resolve from MODULES_DIR (npm install --prefix): NODE_PATH does not
// apply to ES module imports, so they are required from there instead.
import { createRequire } from "node:module";
import { join } from "node:path";

const [modules, port, upstream] = process.argv.slice(2);
const require = createRequire(join(modules, "package.json"));
const Fastify = require("fastify");
const proxy = require("@fastify/http-proxy");

const app = Fastify({ logger: false });
await app.register(proxy, {
  upstream,
  prefix: "/api/users",
  rewritePrefix: "",
});
await app.listen({ host: "127.0.0.1", port: Number(port) });
