import { assertEquals, assertOk } from "../helpers/assert.ts";
import { ParsedRequest } from "../../lib/server/http1/parsed_request.ts";

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
