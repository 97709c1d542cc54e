/**
 * Time source for everything that decides by time (limits, caches, breakers,
 * token validity). Injected so that algorithms are tested exactly, without sleeping.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/**
 * The time of this turn of the event loop, as nginx keeps its cached time and
 * Envoy its approximate monotonic time: the first read in a turn is a call
 * into the runtime (0.1-0.2 us, more amid a request's work, and a proxied
 * request made seven), and every later read returns it until the microtasks
 * queued by then have run. Under load one turn serves many requests' steps
 * and they share a read; a request alone gets turns of its own, read fresh.
 * A value is at most as old as the synchronous work of its turn.
 */
let turnMono = -1;
let turnWall = -1;
let turnEnding = false;

function endTurn(): void {
  turnMono = -1;
  turnWall = -1;
  turnEnding = false;
}

function readInTurn(): void {
  if (turnEnding) return;
  turnEnding = true;
  queueMicrotask(endTurn);
}

/** `performance.now()` of this turn of the event loop (see above). */
export function monoNow(): number {
  if (turnMono < 0) {
    turnMono = performance.now();
    readInTurn();
  }
  return turnMono;
}

/** `Date.now()` of this turn of the event loop (see above). */
export function wallNow(): number {
  if (turnWall < 0) {
    turnWall = Date.now();
    readInTurn();
  }
  return turnWall;
}

/** The real clock, read once per turn of the event loop. */
export const systemClock: Clock = { now: wallNow };

/** A clock that only moves when told to; for tests and simulations. */
export class ManualClock implements Clock {
  constructor(private ms = 0) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
  set(ms: number): void {
    this.ms = ms;
  }
}
