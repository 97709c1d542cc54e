/** A config file emptied (truncated, or only comments left) is refused, on reload too. */
import { assertReloadRefused } from "./helpers.ts";

Deno.test("empty file: a reload of an emptied config is refused and the old config keeps serving", () =>
  assertReloadRefused(
    () => "# all commented out\n",
    (file) => [
      `${file}:1:1: (root): the file has no settings: expected a mapping of sections (listeners, routes, ...); write {} for none`,
    ],
  ));
