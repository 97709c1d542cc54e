/**
 * The one mutable reference of the request path: the current plan. A reload
 * swaps it with one assignment; requests already running finish on the plan
 * they started with, which is disposed when the last of them ends.
 */
import type { Plan } from "./plan.ts";

export class PlanHolder {
  private plan: Plan | null = null;
  private readonly retired = new Set<Plan>();
  /**
   * A stop's `server.drain_delay_s` is running: the listeners still serve while
   * the balancer takes the instance out, and every answer closes its connection,
   * so that no client keeps one open to a listener about to close.
   */
  closeConnections = false;

  get current(): Plan | null {
    return this.plan;
  }

  swap(next: Plan): void {
    const old = this.plan;
    this.plan = next;
    next.activate();
    if (old) {
      if (old.inFlight === 0) void old.dispose();
      else this.retired.add(old);
    }
  }

  /** Called when a request on `plan` ends (its response body too). */
  release(plan: Plan): void {
    if (--plan.inFlight === 0 && this.retired.delete(plan)) void plan.dispose();
  }

  /** `release`, made once: handed to every request without a closure of its own. */
  readonly releaser = (plan: Plan): void => this.release(plan);

  /** Disposes every plan, current and retired (at shutdown). */
  async disposeAll(): Promise<void> {
    const all = [...this.retired, ...(this.plan ? [this.plan] : [])];
    this.retired.clear();
    this.plan = null;
    await Promise.all(all.map((p) => p.dispose()));
  }
}
