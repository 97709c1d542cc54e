/**
 * The bound on a question the main thread asks a worker (an admin request, a
 * reload). A worker whose isolate is stuck (a busy loop, an await that never
 * settles) does not crash, so nothing else would ever settle the question: it
 * must expire, or one stuck worker holds `/readyz`, `/metrics` and every admin
 * change for good.
 */

/** Arms a timer and returns what disarms it; tests pass one that fires when they say. */
export type ArmTimer = (fire: () => void, ms: number) => () => void;

export const systemTimer: ArmTimer = (fire, ms) => {
  const id = setTimeout(fire, ms);
  return () => clearTimeout(id);
};

/** A worker did not answer `what` within `waitedMs`: it may still act on it later. */
export class WorkerTimeoutError extends Error {
  override name = "WorkerTimeoutError";
  constructor(readonly worker: number, readonly waitedMs: number, readonly what: string) {
    super(`worker ${worker} did not answer ${what} within ${waitedMs} ms`);
  }
}

export interface AnswerWait {
  waitMs: number;
  timer?: ArmTimer;
}

/**
 * What `ask` resolves with, or a `WorkerTimeoutError` after `wait.waitMs`. On
 * expiry the signal given to `ask` is aborted, so that the asker forgets the
 * question; an answer that still comes is given to `discard` (to cancel its
 * body), and a failure that still comes is dropped.
 */
export function answerWithin<T>(
  worker: number,
  what: string,
  ask: (signal: AbortSignal) => Promise<T>,
  wait: AnswerWait,
  discard: (late: T) => void = () => {},
): Promise<T> {
  const controller = new AbortController();
  const { promise, resolve, reject } = Promise.withResolvers<T>();
  let settled = false;
  const disarm = (wait.timer ?? systemTimer)(() => {
    if (settled) return;
    settled = true;
    const expired = new WorkerTimeoutError(worker, wait.waitMs, what);
    controller.abort(expired);
    reject(expired);
  }, wait.waitMs);
  let answer: Promise<T>;
  try {
    answer = ask(controller.signal);
  } catch (e) {
    answer = Promise.reject(e);
  }
  answer.then(
    (v) => {
      if (settled) return discard(v);
      settled = true;
      disarm();
      resolve(v);
    },
    (e) => {
      if (settled) return;
      settled = true;
      disarm();
      reject(e);
    },
  );
  return promise;
}
