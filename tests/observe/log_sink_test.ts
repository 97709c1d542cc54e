/** The access log's buffered writer: batching, bounded backlog, failures counted. */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { LogSink, type Output } from "../../lib/observe/log_sink.ts";
import { silentLogger } from "../../lib/observe/logger.ts";

function recorder(): { out: Output; writes: string[] } {
  const writes: string[] = [];
  return {
    writes,
    out: {
      write: (p) => {
        writes.push(new TextDecoder().decode(p));
        return Promise.resolve(p.length);
      },
    },
  };
}

Deno.test("log sink: lines queued within flush_ms go out in one write, on the timer", async () => {
  const { out, writes } = recorder();
  const sink = new LogSink("stdout", 30, silentLogger, out);
  await sink.open();
  try {
    sink.write("one");
    sink.write("two");
    sink.write("three");
    assertEquals(writes, []);
    // The timer may fire late on a loaded machine: wait for its write, then look at it.
    for (let i = 0; i < 500 && writes.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(writes, ["one\ntwo\nthree\n"]);
  } finally {
    await sink.close();
  }
});

Deno.test("log sink: a stalled destination drops lines past the backlog cap and counts them", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let written = 0;
  const sink = new LogSink("stdout", 1000, silentLogger, {
    write: async (p) => {
      await gate;
      written += new TextDecoder().decode(p).split("\n").length - 1;
      return p.length;
    },
  });
  await sink.open();
  const line = "x".repeat(1023);
  const total = 20_000; // 20 MiB of lines against a 16 MiB backlog
  for (let i = 0; i < total; i++) sink.write(line);
  assertOk(sink.dropped > 0 && sink.dropped < total, `dropped ${sink.dropped}`);
  release();
  await sink.close();
  assertEquals(written + sink.dropped, total);
});

Deno.test("log sink: lines a failing destination could not take are counted as dropped", async () => {
  const sink = new LogSink("stdout", 1000, silentLogger, {
    write: () => Promise.reject(new Error("disk full")),
  });
  await sink.open();
  for (let i = 0; i < 5; i++) sink.write(`line ${i}`);
  await sink.close();
  assertEquals(sink.dropped, 5);
});
