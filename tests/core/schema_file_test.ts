/** The editor schema on disk matches the schema the gateway validates with. */
import { assertEquals } from "../helpers/assert.ts";
import { renderSchema, SCHEMA_FILE } from "../../scripts/gen_schema.ts";

Deno.test("config/gateway.schema.json is current (regenerate with `deno task schema`)", async () => {
  const onDisk = await Deno.readTextFile(SCHEMA_FILE);
  assertEquals(onDisk === renderSchema(), true, "run `deno task schema` and commit the result");
});

Deno.test("the JSON schema knows the top-level sections and rejects unknown ones", () => {
  const s = JSON.parse(renderSchema());
  for (const key of ["listeners", "admin", "store", "upstreams", "auth", "routes", "security"]) {
    assertEquals(key in s.properties, true, key);
  }
  assertEquals(s.additionalProperties, false);
});
