/**
 * everyWorkerApplies(): a key or revocation write under `--workers N` waits for
 * every worker's mirror, for at most a bound. Fake workers answer when the test
 * says, and the bound is a timer that fires when the test says: nothing sleeps.
 */
import { assertEquals } from "../helpers/assert.ts";
import { FakeTimer } from "./fake_timer.ts";
import {
  type CredentialMirror,
  CREDENTIALS_APPLY_WAIT_MS,
  everyWorkerApplies,
} from "../../lib/cluster/credential_fanout.ts";
import {
  type CredentialChange,
  CredentialOwner,
  CREDENTIALS_SERVICE,
  WorkerCredentialStore,
} from "../../lib/cluster/shared_credentials.ts";
import { RpcHost, WorkerRpc } from "../../lib/cluster/rpc.ts";
import { JsonLogger } from "../../lib/observe/logger.ts";

const CHANGE: CredentialChange = { op: "key", digest: "d1", consumer: "team-a" };

/** A worker whose mirror applies a change only when the test says; or never. */
class FakeWorker implements CredentialMirror {
  readonly options: { index: number };
  readonly heard: CredentialChange[] = [];
  private readonly answers: PromiseWithResolvers<void>[] = [];
  constructor(index: number) {
    this.options = { index };
  }
  applyCredentials(change: CredentialChange): Promise<void> {
    this.heard.push(change);
    const answer = Promise.withResolvers<void>();
    this.answers.push(answer);
    return answer.promise;
  }
  /** Applied (or died: `WorkerHandle` settles the same way for a worker that is gone). */
  apply(): void {
    this.answers.shift()!.resolve();
  }
  fail(e: Error): void {
    this.answers.shift()!.reject(e);
  }
}

function setup(n: number, waitMs?: number) {
  const workers = Array.from({ length: n }, (_, i) => new FakeWorker(i));
  const timer = new FakeTimer();
  const lines: Record<string, unknown>[] = [];
  const logger = new JsonLogger("info", (l) => lines.push(JSON.parse(l)));
  const write = (change = CHANGE) =>
    everyWorkerApplies(workers, change, { logger, timer: timer.arm, waitMs });
  return { workers, timer, lines, write };
}

/** Whether `p` has settled after every pending task and message has run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => done = true, () => done = true);
  await new Promise((r) => setTimeout(r, 0));
  return done;
}

const logged = (lines: Record<string, unknown>[]) =>
  lines.map(({ level, msg, workers, worker, waited_ms }) => ({
    level,
    msg,
    ...(workers !== undefined ? { workers } : {}),
    ...(worker !== undefined ? { worker } : {}),
    ...(waited_ms !== undefined ? { waited_ms } : {}),
  }));

Deno.test("everyWorkerApplies() answers once every worker applied the change, and disarms its timer", async () => {
  const { workers, timer, lines, write } = setup(3);
  const done = write();
  assertEquals(workers.map((w) => w.heard), [[CHANGE], [CHANGE], [CHANGE]]);
  // Without a bound given, the README's 5 s.
  assertEquals([...timer.armed.values()].map((t) => t.ms), [CREDENTIALS_APPLY_WAIT_MS]);
  assertEquals(CREDENTIALS_APPLY_WAIT_MS, 5_000);
  workers[0]!.apply();
  workers[2]!.apply();
  assertEquals(await settled(done), false);
  workers[1]!.apply();
  assertEquals(await done, []);
  assertEquals(timer.armed.size, 0);
  assertEquals(lines, []);
});

Deno.test("everyWorkerApplies() with no worker running answers at once", async () => {
  const { timer, lines, write } = setup(0);
  assertEquals(await write(), []);
  assertEquals([timer.armed.size, lines], [0, []]);
});

Deno.test("everyWorkerApplies() answers after the bound when a worker never applies the change, and names it", async () => {
  const { workers, timer, lines, write } = setup(3, 40);
  const done = write();
  workers[0]!.apply();
  workers[2]!.apply();
  assertEquals(await settled(done), false);
  assertEquals([...timer.armed.values()].map((t) => t.ms), [40]);

  timer.fireAll();
  assertEquals(await done, [1]);
  assertEquals(logged(lines), [{
    level: "warn",
    msg: "workers have not applied a key or revocation change yet",
    workers: [1],
    waited_ms: 40,
  }]);

  // Its answer after the bound changes nothing: no error, no second line, nothing armed.
  workers[1]!.apply();
  await settled(done);
  assertEquals([lines.length, timer.armed.size], [1, 0]);
});

Deno.test("everyWorkerApplies() names every worker still silent at the bound, in index order", async () => {
  const { workers, timer, lines, write } = setup(4, 40);
  const done = write();
  workers[2]!.apply();
  timer.fireAll();
  assertEquals(await done, [0, 1, 3]);
  assertEquals(lines.map((l) => l.workers), [[0, 1, 3]]);
});

Deno.test("everyWorkerApplies() does not wait for a worker that dies during the wait, whose restart starts from the owner's copy", async () => {
  // The owner applies the change to its copy, then announces it; a worker that dies is
  // settled by its handle, and the restarted one starts from the owner's snapshot.
  const { workers, timer, lines, write } = setup(2);
  const owner = new CredentialOwner(() => 0, write);
  const host = new RpcHost();
  host.register(CREDENTIALS_SERVICE, owner.service());
  const rpc = new WorkerRpc();
  rpc.attach((msg) => {
    if (msg.type === "rpc") void host.handle(msg.calls).then((r) => rpc.settle(r.results));
  });
  const store = new WorkerCredentialStore(rpc, { keys: [], revoked: [] });

  const added = store.addKey("d1", "team-a");
  await settled(added);
  workers[0]!.apply();
  assertEquals(await settled(added), false);
  workers[1]!.apply(); // the worker died: its handle settles every pending call
  assertEquals(await settled(added), true);
  assertEquals([timer.armed.size, lines], [0, []]);
  // What a worker restarted now starts from.
  assertEquals(owner.snapshot().keys, [["d1", "team-a"]]);
});

Deno.test("everyWorkerApplies() reports a worker that could not be sent the change instead of failing the write", async () => {
  // WorkerHandle.applyCredentials does not reject; were it to, the write would have
  // rejected with the bound's timer still armed, though the owner held the change.
  const { workers, timer, lines, write } = setup(3);
  workers[2]!.applyCredentials = () => {
    throw new Error("could not be cloned");
  };
  const done = write();
  workers[0]!.apply();
  workers[1]!.fail(new Error("the port is closed"));
  assertEquals(await done, [1, 2]);
  assertEquals(timer.armed.size, 0);
  assertEquals(logged(lines), [
    { level: "error", msg: "a worker could not be sent a key or revocation change", worker: 2 },
    { level: "error", msg: "a worker could not be sent a key or revocation change", worker: 1 },
  ]);
});

Deno.test("everyWorkerApplies() on the real timer: answers after a short bound, leaving no timer behind", async () => {
  // Deno's op sanitizer fails this test if the timer outlives it.
  const workers = [new FakeWorker(0), new FakeWorker(1)];
  const lines: string[] = [];
  const started = performance.now();
  const done = everyWorkerApplies(workers, CHANGE, {
    waitMs: 30,
    logger: new JsonLogger("info", (l) => lines.push(l)),
  });
  workers[0]!.apply();
  assertEquals(await done, [1]);
  assertEquals(performance.now() - started >= 25, true);
  assertEquals(lines.length, 1);
  workers[1]!.apply();
});
