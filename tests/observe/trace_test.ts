import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { callerTraceId, parseTraceparent, randomHex } from "../../lib/observe/trace.ts";

Deno.test("trace ids: lower-case hex of the asked length, distinct, every digit used", () => {
  const ids = Array.from({ length: 2000 }, (_, i) => randomHex(i % 2 === 0 ? 16 : 8));
  for (const [i, id] of ids.entries()) {
    assertMatch(id, i % 2 === 0 ? /^[0-9a-f]{32}$/ : /^[0-9a-f]{16}$/);
  }
  assertEquals(new Set(ids).size, ids.length);
  // Both nibbles of a byte map to digits: each of the 16 appears at even and at odd positions.
  for (const parity of [0, 1]) {
    const seen = new Set(ids.flatMap((id) => [...id].filter((_, j) => j % 2 === parity)));
    assertEquals(seen.size, 16);
  }
});

Deno.test("trace ids: a new trace when the traceparent is missing or invalid", () => {
  for (const header of [null, "garbage", `00-${"0".repeat(32)}-00f067aa0ba902b7-01`]) {
    const t = parseTraceparent(header, "vendor=x");
    assertMatch(t.traceId, /^[0-9a-f]{32}$/);
    assertMatch(t.spanId, /^[0-9a-f]{16}$/);
    assertEquals([t.parentId, t.state, t.flags], [null, null, "03"]);
  }
});

Deno.test("callerTraceId() is the trace id of a valid traceparent, else null", () => {
  const id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const cases: [string | null, string | null][] = [
    [`00-${id}-00f067aa0ba902b7-01`, id],
    [` 00-${id}-00f067aa0ba902b7-ff `, id],
    [`01-${id}-00f067aa0ba902b7-01-future`, id],
    [null, null],
    ["garbage", null],
    [`00-${id.toUpperCase()}-00F067AA0BA902B7-01`, null],
    [`00-${"0".repeat(32)}-00f067aa0ba902b7-01`, null],
    [`00-${id}-${"0".repeat(16)}-01`, null],
    [`ff-${id}-00f067aa0ba902b7-01`, null],
    [`00-${id}-00f067aa0ba902b7-01-extra`, null],
  ];
  for (const [header, expected] of cases) assertEquals(callerTraceId(header), expected, header!);
});
