import { assertEquals, assertOk } from "../helpers/assert.ts";
import { ParsedRequest } from "../../lib/server/http1/parsed_request.ts";
import { Http1Server } from "../../lib/server/http1/server.ts";
import type { IncomingRequest } from "../../lib/server/incoming.ts";

Deno.test("ParsedRequest: a Request whose headers hold the parsed fields once read, once", async () => {
  const fields: [string, string][] = [["host", "a.test"], ["x-multi", "one"], ["x-multi", "two"]];
  const req = new ParsedRequest("http://a.test/p?q=1", {
    method: "POST",
    body: new Blob(["hi"]).stream(),
    duplex: "half",
  } as RequestInit, fields);
  assertOk(req instanceof Request);
  assertEquals(req.method, "POST");
  assertEquals(req.headers.get("x-multi"), "one, two");
  assertEquals([...req.headers], [["host", "a.test"], ["x-multi", "one, two"]]);
  assertOk(req.headers === req.headers, "one Headers, filled on the first read only");
  req.headers.set("x-added", "1");
  assertEquals(req.headers.get("x-added"), "1");
  assertEquals(await req.text(), "hi");

  const get = new ParsedRequest("http://a.test/", undefined, [["host", "a.test"]]);
  assertEquals(get.method, "GET");
  assertEquals([...get.headers], [["host", "a.test"]]);
});

Deno.test("ParsedIncoming: a request's URL has its listener's scheme, https behind TLS", async () => {
  const fixtures = new URL("../deploy/fixtures/", import.meta.url).pathname;
  const tls = {
    cert: await Deno.readTextFile(`${fixtures}server.crt`),
    key: await Deno.readTextFile(`${fixtures}server.key`),
  };
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${fixtures}ca.crt`)] });
  const timeouts = () => ({ headerMs: 5_000, idleMs: 5_000, sendMs: 5_000 });
  const echo = (req: IncomingRequest) =>
    Promise.resolve(new Response(`${req.url} ${req.request().url}`));
  const plain = new Http1Server({ hostname: "127.0.0.1", port: 0, timeouts }, echo);
  const secure = new Http1Server({ hostname: "127.0.0.1", port: 0, timeouts, tls }, echo);
  try {
    const p = plain.addr.port, s = secure.addr.port;
    const got = await (await fetch(`http://127.0.0.1:${p}/a?b=1`)).text();
    assertEquals(got, `http://127.0.0.1:${p}/a?b=1 http://127.0.0.1:${p}/a?b=1`);
    // Until 2026-12-08 it began http:// there too, and so did a trace span's url.full.
    const viaTls = await (await fetch(`https://localhost:${s}/a?b=1`, { client })).text();
    assertEquals(viaTls, `https://localhost:${s}/a?b=1 https://localhost:${s}/a?b=1`);
  } finally {
    client.close();
    await Promise.all([plain.shutdown(), secure.shutdown()]);
  }
});
