/** The deadline wheel: due items are checked once per tick, whatever the checks add or remove. */
import { assertEquals } from "../helpers/assert.ts";
import { DeadlineWheel, type Watched } from "../../lib/proxy/http1/deadlines.ts";

class Item implements Watched {
  wheelSlot = -1;
  checks: number[] = [];
  constructor(readonly name: string, public nextCheck: number, public onCheck?: () => void) {}
  check(now: number): void {
    this.checks.push(now);
    this.nextCheck = Infinity;
    this.onCheck?.();
  }
}

Deno.test("deadline wheel: only due items are checked, and removals keep the others watched", () => {
  const wheel = new DeadlineWheel();
  const items = [10, 20, 30, 40, 50].map((t, i) => new Item(`i${i}`, t));
  for (const it of items) wheel.add(it);
  wheel.add(items[0]!); // twice is once
  assertEquals(wheel.size, 5);

  wheel.delete(items[1]!); // from the middle: the last takes its slot
  wheel.delete(items[1]!); // not watched: nothing
  assertEquals(wheel.size, 4);
  assertEquals(items[1]!.wheelSlot, -1);

  wheel.tick(35);
  assertEquals(items.map((i) => i.checks.length), [1, 0, 1, 0, 0]);
  wheel.tick(35); // a check that set no new deadline is not repeated
  assertEquals(items.map((i) => i.checks.length), [1, 0, 1, 0, 0]);

  for (const it of items) wheel.delete(it);
  assertEquals(wheel.size, 0);
});

Deno.test("deadline wheel: a check can remove or add items in the same tick", () => {
  const wheel = new DeadlineWheel();
  const victim = new Item("victim", 5);
  const late = new Item("late", 5);
  const killer = new Item("killer", 5, () => {
    wheel.delete(victim);
    wheel.add(late);
  });
  const bystander = new Item("bystander", 5);
  for (const it of [killer, victim, bystander]) wheel.add(it);

  wheel.tick(10);
  assertEquals(killer.checks, [10]);
  assertEquals(victim.checks, [], "removed by an earlier check: not checked");
  assertEquals(bystander.checks, [10]);
  assertEquals(late.checks, [], "added during the tick: waits for the next");

  wheel.tick(20);
  assertEquals(late.checks, [20]);
  for (const it of [killer, victim, bystander, late]) wheel.delete(it);
  assertEquals(wheel.size, 0);
});

Deno.test("deadline wheel: its clock is the last tick's while it runs, read fresh when it does not", () => {
  const wheel = new DeadlineWheel();
  const before = performance.now();
  const idle = wheel.coarseNow();
  assertEquals(before <= idle && idle <= performance.now(), true, "idle: a fresh read");

  const item = new Item("i", Infinity);
  const startedBefore = performance.now();
  wheel.add(item); // starts the timer: its clock is set now
  const first = wheel.coarseNow();
  assertEquals(startedBefore <= first && first <= performance.now(), true);
  // A moment passes without a tick (the timer cannot run inside this synchronous test).
  const spinFrom = performance.now();
  while (performance.now() - spinFrom < 2) continue;
  assertEquals(wheel.coarseNow(), first, "running: the time of the last tick, not of the call");

  wheel.delete(item); // the last item stops the timer
  const after = wheel.coarseNow();
  assertEquals(after > first, true, "stopped: a fresh read again");
});
