/** An `ArmTimer` for the cluster's bounded waits whose timers fire only when a test says. */
import type { ArmTimer } from "../../lib/cluster/worker_wait.ts";

export class FakeTimer {
  /** The armed timers, with the wait each was armed for. */
  readonly armed = new Map<number, { fire(): void; ms: number }>();
  private next = 1;
  readonly arm: ArmTimer = (fire, ms) => {
    const id = this.next++;
    this.armed.set(id, { fire, ms });
    return () => this.armed.delete(id);
  };
  fireAll(): void {
    const due = [...this.armed.values()];
    this.armed.clear();
    for (const t of due) t.fire();
  }
}
