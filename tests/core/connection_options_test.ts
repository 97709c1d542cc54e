import { assertEquals } from "../helpers/assert.ts";
import { connectionOptions } from "../../lib/core/connection_options.ts";

Deno.test("connectionOptions() lists options lower-case, without whitespace or empty elements", () => {
  assertEquals(connectionOptions("Keep-Alive"), ["keep-alive"]);
  assertEquals(connectionOptions(" close\t"), ["close"]);
  assertEquals(connectionOptions("Upgrade, X-Trace ,,\tclose"), ["upgrade", "x-trace", "close"]);
  assertEquals(connectionOptions(""), []);
  assertEquals(connectionOptions(" , "), []);
  // An option is a whole element: neither a part of one nor a space-separated word.
  assertEquals(connectionOptions("closed, x-close").includes("close"), false);
});
