/**
 * `max_connections`: how every kind of listener admits a connection once it
 * holds its cap. An idle connection is closed to make room, as nginx frees a
 * keep-alive connection; only when all are busy is the new one closed at once,
 * as Envoy does, rather than left waiting in the backlog.
 */

/** A listener's cap and what it tells of its work; all unset: no cap. */
export interface ConnectionCap {
  /** Connections held at once, read per accepted connection so that a reload applies it. */
  maxConnections?: () => number;
  /** Told of each connection closed at once because the cap was held, none idle. */
  onOverflow?: () => void;
  /** Told of each idle connection closed to make room for a new one. */
  onReclaim?: () => void;
}

/**
 * Whether a new connection is served while `held` are: under the cap, or once
 * `reclaimIdle` has closed an idle one. False: the caller closes it.
 */
export function admitConnection(
  cap: ConnectionCap,
  held: number,
  reclaimIdle: () => boolean,
): boolean {
  if (cap.maxConnections === undefined || held < cap.maxConnections()) return true;
  if (reclaimIdle()) {
    cap.onReclaim?.();
    return true;
  }
  cap.onOverflow?.();
  return false;
}

/** The cap's fields that `o` sets, for the options of the server that counts the connections. */
export function connectionCapOf(o: ConnectionCap): ConnectionCap {
  return {
    ...(o.maxConnections ? { maxConnections: o.maxConnections } : {}),
    ...(o.onOverflow ? { onOverflow: o.onOverflow } : {}),
    ...(o.onReclaim ? { onReclaim: o.onReclaim } : {}),
  };
}
