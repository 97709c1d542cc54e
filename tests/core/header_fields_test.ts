import { assertEquals } from "../helpers/assert.ts";
import { type FieldList, HeaderFields } from "../../lib/core/header_fields.ts";

// The pipeline reads the parsed fields where the rest of the world reads Request.headers: both must agree.
const LISTS: FieldList[] = [
  [],
  [["host", "a"]],
  [["host", "a"], ["x-multi", "one"], ["accept", "*/*"], ["x-multi", "two"]],
  [["cookie", "a=1"], ["cookie", "b=2"], ["x-empty", ""], ["x-empty", "v"]],
];

Deno.test("HeaderFields answers get() and has() as Headers does, from the parsed fields or from Headers", () => {
  for (const list of LISTS) {
    const headers = new Headers(list as [string, string][]);
    // Listing a Headers joins an empty value into a repeated field without a comma (a
    // runtime quirk; Headers.get keeps it): only the parsed fields are compared there.
    const quirk = list.some(([, v]) => v === "");
    const views = quirk
      ? [new HeaderFields(list)]
      : [new HeaderFields(list), HeaderFields.of(headers)];
    for (const view of views) {
      for (const name of ["host", "x-multi", "accept", "cookie", "x-empty", "absent"]) {
        assertEquals(view.get(name), headers.get(name), `${name} in ${JSON.stringify(list)}`);
        assertEquals(view.has(name), headers.has(name), `${name} in ${JSON.stringify(list)}`);
      }
    }
  }
});
