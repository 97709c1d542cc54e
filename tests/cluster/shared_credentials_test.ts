/**
 * Keys and revocations of `store.kind: memory` under `--workers N`: the main
 * thread's owner answers a write only once every worker has applied it.
 */
import { assertEquals } from "../helpers/assert.ts";
import {
  type CredentialChange,
  CredentialOwner,
  CREDENTIALS_SERVICE,
  WorkerCredentialStore,
} from "../../lib/cluster/shared_credentials.ts";
import { RpcHost, WorkerRpc } from "../../lib/cluster/rpc.ts";

/** An owner whose announcements settle only when the test says the workers applied them. */
function ownerWithHeldWorkers() {
  const held: { change: CredentialChange; applied(): void }[] = [];
  const owner = new CredentialOwner(() => 0, (change) => {
    const { promise, resolve } = Promise.withResolvers<void>();
    held.push({ change, applied: resolve });
    return promise;
  });
  const host = new RpcHost();
  host.register(CREDENTIALS_SERVICE, owner.service());
  const rpc = new WorkerRpc();
  rpc.attach((msg) => {
    if (msg.type === "rpc") void host.handle(msg.calls).then((r) => rpc.settle(r.results));
  });
  return { owner, held, store: new WorkerCredentialStore(rpc, { keys: [], revoked: [] }) };
}

/** Whether `p` has settled after every pending task and message has run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => done = true, () => done = true);
  await new Promise((r) => setTimeout(r, 0));
  return done;
}

Deno.test("shared credentials: add, delete and revoke answer only once every worker has applied them", async () => {
  const { owner, held, store } = ownerWithHeldWorkers();

  const added = store.addKey("d1", "team-a");
  assertEquals(await settled(added), false);
  assertEquals(held.map((h) => h.change), [{ op: "key", digest: "d1", consumer: "team-a" }]);
  held.shift()!.applied();
  assertEquals(await settled(added), true);

  const removed = store.removeKey("d1");
  assertEquals(await settled(removed), false);
  // The owner's copy changed at once: a worker started now gets the key's deletion with its snapshot.
  assertEquals(owner.snapshot().keys, []);
  held.shift()!.applied();
  assertEquals(await removed, true);

  // A key nobody holds: nothing to tell the workers, answered at once.
  assertEquals(await store.removeKey("d1"), false);
  assertEquals(held.length, 0);

  const revoked = store.revoke("jti-1", 3600);
  assertEquals(await settled(revoked), false);
  held.shift()!.applied();
  assertEquals(await settled(revoked), true);
});

Deno.test("shared credentials: a reload's removal of consumers answers once every deletion is applied", async () => {
  const { held, store } = ownerWithHeldWorkers();
  for (const [digest, consumer] of [["d1", "gone"], ["d2", "gone"], ["d3", "kept"]] as const) {
    const p = store.addKey(digest, consumer);
    held.shift()!.applied();
    await p;
  }
  const dropped = store.dropConsumers(new Set(["gone"]));
  assertEquals(await settled(dropped), false);
  assertEquals(held.map((h) => h.change), [
    { op: "unkey", digest: "d1" },
    { op: "unkey", digest: "d2" },
  ]);
  held.shift()!.applied();
  assertEquals(await settled(dropped), false);
  held.shift()!.applied();
  assertEquals(await dropped, [["d1", "gone"], ["d2", "gone"]]);
});
