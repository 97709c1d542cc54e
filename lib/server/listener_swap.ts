/**
 * Replacing a running listener on reload. The old one's requests are never
 * waited for here: they finish in the background (the request that asked for
 * the reload may be one of them, on the admin listener). On another port the
 * new listener opens before the old one stops accepting; on the same port the
 * old one must let go of it first, and if the new one then cannot open, the
 * old settings are opened again, so a failed reload leaves a listener serving.
 */
import type { RunningListener } from "./listeners.ts";

export interface Swapped {
  running: RunningListener;
  /** The old listener's drain: resolves once its requests are done. */
  drained: Promise<void>;
}

/**
 * A swap on the same port failed; `restored` is the old settings opened again,
 * if that worked, and `drained` the old listener's drain.
 */
export class SwapFailed extends Error {
  constructor(
    cause: unknown,
    readonly restored: RunningListener | null,
    readonly drained: Promise<void>,
  ) {
    super((cause as Error)?.message ?? String(cause), { cause });
  }
}

/** How long a same-port swap waits for the port the old listener is letting go of. */
const PORT_RELEASE_MS = 2_000;
const RETRY_MS = 5;

/**
 * `sharedPort`: both listeners open the port with SO_REUSEPORT (workers do),
 * so the new one can open before the old one lets go, as on another port.
 */
export async function replaceListener(
  old: RunningListener | null,
  port: number,
  start: () => Promise<RunningListener>,
  reopenOld: () => Promise<RunningListener>,
  sharedPort = false,
): Promise<Swapped> {
  if (old === null) return { running: await start(), drained: Promise.resolve() };
  if (port === 0 || old.port !== port || sharedPort) {
    const running = await start();
    return { running, drained: old.shutdown() };
  }
  const drained = old.shutdown();
  try {
    return { running: await startOnReleasedPort(start), drained };
  } catch (e) {
    const restored = await startOnReleasedPort(reopenOld).catch(() => null);
    throw new SwapFailed(e, restored, drained);
  }
}

/** Keeps a replaced listener's drain in `retiring` until it ends, for a shutdown to wait for. */
export function retire(retiring: Set<Promise<void>>, drained: Promise<void>): void {
  const settled = drained.catch(() => {});
  retiring.add(settled);
  void settled.then(() => retiring.delete(settled));
}

/** `start`, retried while the port is still held by the listener that is closing. */
async function startOnReleasedPort(
  start: () => Promise<RunningListener>,
): Promise<RunningListener> {
  const deadline = Date.now() + PORT_RELEASE_MS;
  while (true) {
    try {
      return await start();
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse) || Date.now() >= deadline) throw e;
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
}
