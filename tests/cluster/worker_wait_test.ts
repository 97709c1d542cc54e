/**
 * answerWithin(): the bound on one question to a worker. The timer fires when
 * the test says, and the answer comes when the test gives it: nothing sleeps.
 */
import { assertEquals, assertOk } from "../helpers/assert.ts";
import { answerWithin, type ArmTimer, WorkerTimeoutError } from "../../lib/cluster/worker_wait.ts";

/** One timer that fires when told; `disarmed` once it was cleared. */
function oneTimer() {
  const t = { fire: () => {}, ms: 0, disarmed: false };
  const arm: ArmTimer = (fire, ms) => {
    Object.assign(t, { fire, ms });
    return () => (t.disarmed = true);
  };
  return { t, arm };
}

Deno.test("answerWithin() settles with the answer and disarms its timer", async () => {
  const { t, arm } = oneTimer();
  const v = await answerWithin(3, "the reload", () => Promise.resolve("ok"), {
    waitMs: 50,
    timer: arm,
  });
  assertEquals([v, t.ms, t.disarmed], ["ok", 50, true]);
});

Deno.test("answerWithin() gives up with a WorkerTimeoutError, aborts the question, and drops what comes after", async () => {
  const { t, arm } = oneTimer();
  const answer = Promise.withResolvers<string>();
  let signal: AbortSignal | undefined;
  const discarded: string[] = [];
  const asking = answerWithin(
    2,
    "GET /readyz",
    (s) => {
      signal = s;
      return answer.promise;
    },
    { waitMs: 40, timer: arm },
    (late) => discarded.push(late),
  );
  t.fire();
  const e = await asking.then(() => null, (e) => e);
  assertOk(e instanceof WorkerTimeoutError, String(e));
  assertEquals(
    [e.worker, e.waitedMs, e.what, e.message],
    [2, 40, "GET /readyz", "worker 2 did not answer GET /readyz within 40 ms"],
  );
  assertEquals([signal?.aborted, signal?.reason], [true, e]);
  answer.resolve("late");
  await answer.promise;
  await Promise.resolve();
  assertEquals(discarded, ["late"]);
});

Deno.test("answerWithin() drops a failure that comes after it gave up (no unhandled rejection)", async () => {
  const { t, arm } = oneTimer();
  const answer = Promise.withResolvers<string>();
  const asking = answerWithin(0, "the reload", () => answer.promise, { waitMs: 1, timer: arm });
  t.fire();
  await asking.catch(() => {});
  answer.reject(new Error("worker 0 stopped"));
  // Deno fails the test if the rejection is left unhandled.
  await new Promise((r) => setTimeout(r, 0));
});
