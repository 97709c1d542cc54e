/**
 * Resilience state that outlives plans: breakers, ejection records, health
 * checkers, bulkheads and retry budgets, keyed by upstream, target and the
 * settings that shape them. A reload that keeps those settings keeps the state
 * (an open circuit stays open); changed settings start afresh. Plans take and
 * give back references; an object is disposed when no plan uses it any more.
 */

interface Entry {
  value: unknown;
  refs: number;
  dispose: ((value: never) => unknown) | null;
}

export class ResilienceRegistry {
  private readonly entries = new Map<string, Entry>();

  /** The object under `key`, created on first use. Pair every call with `release(key)`. */
  acquire<T>(key: string, create: () => T, dispose?: (value: T) => unknown): T {
    let e = this.entries.get(key);
    if (!e) {
      e = { value: create(), refs: 0, dispose: dispose ?? null };
      this.entries.set(key, e);
    }
    e.refs++;
    return e.value as T;
  }

  async release(key: string): Promise<void> {
    const e = this.entries.get(key);
    if (!e || --e.refs > 0) return;
    this.entries.delete(key);
    await e.dispose?.(e.value as never);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Disposes everything left (at shutdown, after every plan let go). */
  async closeAll(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => e.dispose?.(e.value as never)));
  }
}

/** A stable registry key for an object shaped by `settings`. */
export function registryKey(kind: string, scope: string, settings: unknown): string {
  return `${kind}\n${scope}\n${JSON.stringify(settings)}`;
}
