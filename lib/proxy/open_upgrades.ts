/**
 * The WebSocket sessions a gateway relays, so that its shutdown can end them:
 * a relay outlives the request that opened it (and its listener's drain),
 * and left to itself would go on after the gateway has stopped, its record
 * never written.
 */
export interface OpenUpgrade {
  /** Ends the session now (its relay then reports its end as usual). */
  close(): void;
}

export class OpenUpgrades {
  private readonly open = new Set<OpenUpgrade>();
  private emptied: (() => void) | null = null;

  /** Registers a session; the function returned unregisters it, at its end. */
  add(session: OpenUpgrade): () => void {
    this.open.add(session);
    return () => {
      this.open.delete(session);
      if (this.open.size === 0) this.emptied?.();
    };
  }

  get size(): number {
    return this.open.size;
  }

  /** Ends every open session; resolves once all have ended. */
  closeAll(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    const ended = new Promise<void>((resolve) => this.emptied = resolve);
    for (const session of [...this.open]) session.close();
    return ended;
  }
}
