/** The Prometheus registry and its text exposition, exactly. */
import { assertEquals, assertThrows } from "../helpers/assert.ts";
import { MetricsRegistry } from "../../lib/observe/metrics/registry.ts";
import { parsePromText, sampleValue } from "./prom_text.ts";

Deno.test("registry: renders counters, gauges and collected families in the text format", () => {
  const r = new MetricsRegistry();
  const c = r.counter("t_requests_total", "Requests.\nSecond line \\ done", ["route", "code"]);
  c.labels("a", "200").inc();
  c.labels("a", "200").inc(2);
  c.labels('we"ird\\', "line\nbreak").inc();
  r.gauge("t_in_flight", "In flight").labels().set(4);
  r.collect("t_up", "Up", "gauge", ["target"], () => [[["x"], 1], [["y"], 0]]);
  assertEquals(
    r.render(),
    [
      "# HELP t_requests_total Requests.\\nSecond line \\\\ done",
      "# TYPE t_requests_total counter",
      't_requests_total{route="a",code="200"} 3',
      't_requests_total{route="we\\"ird\\\\",code="line\\nbreak"} 1',
      "# HELP t_in_flight In flight",
      "# TYPE t_in_flight gauge",
      "t_in_flight 4",
      "# HELP t_up Up",
      "# TYPE t_up gauge",
      't_up{target="x"} 1',
      't_up{target="y"} 0',
      "",
    ].join("\n"),
  );
  const parsed = parsePromText(r.render());
  assertEquals(
    sampleValue(parsed, "t_requests_total", { route: 'we"ird\\', code: "line\nbreak" }),
    1,
  );
});

Deno.test("registry: histogram buckets are cumulative with le bounds inclusive", () => {
  const r = new MetricsRegistry();
  const h = r.histogram("t_duration_seconds", "Duration", ["route"], [0.1, 1, 10]).labels("r");
  for (const v of [0.05, 0.1, 0.5, 1, 3, 20]) h.observe(v);
  assertEquals(
    r.render(),
    [
      "# HELP t_duration_seconds Duration",
      "# TYPE t_duration_seconds histogram",
      't_duration_seconds_bucket{route="r",le="0.1"} 2',
      't_duration_seconds_bucket{route="r",le="1"} 4',
      't_duration_seconds_bucket{route="r",le="10"} 5',
      't_duration_seconds_bucket{route="r",le="+Inf"} 6',
      't_duration_seconds_sum{route="r"} 24.65',
      't_duration_seconds_count{route="r"} 6',
      "",
    ].join("\n"),
  );
  parsePromText(r.render());
});

Deno.test("registry: an empty label value is left out; special values are spelled Prometheus' way", () => {
  const r = new MetricsRegistry();
  r.counter("t_total", "T", ["route", "consumer"]).labels("a", "").inc();
  r.gauge("t_odd", "Odd", ["k"]).labels("inf").set(Infinity);
  r.gauge("t_odd", "Odd", ["k"]).labels("nan").set(NaN);
  assertEquals(
    r.render().split("\n").filter((l) => !l.startsWith("#")),
    ['t_total{route="a"} 1', 't_odd{k="inf"} +Inf', 't_odd{k="nan"} NaN', ""],
  );
});

Deno.test("registry: families are shared by name and conflicting registrations are refused", () => {
  const r = new MetricsRegistry();
  const a = r.counter("t_total", "T", ["x"]);
  assertEquals(r.counter("t_total", "T", ["x"]) === a, true);
  assertThrows(() => r.gauge("t_total", "T", ["x"]), /already registered/);
  assertThrows(() => r.counter("t_total", "T", ["y"]), /already registered/);
  assertThrows(
    () => r.histogram("t_h", "H", [], [1]) && r.histogram("t_h", "H", [], [2]),
    /buckets/,
  );
  assertThrows(() => r.counter("bad-name", "T"), /Invalid metric name/);
  assertThrows(() => r.counter("t2_total", "T", ["__reserved"]), /Invalid label name/);
  assertThrows(() => a.labels("1", "2"), /takes 1 label/);
});
