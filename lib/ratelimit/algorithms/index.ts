/** Builds the algorithm a spec describes (the same spec a Redis script or another isolate runs). */
import type { Algorithm, AlgorithmSpec } from "./algorithm.ts";
import { tokenBucket } from "./token_bucket.ts";
import { leakyBucket } from "./leaky_bucket.ts";
import { fixedWindow } from "./fixed_window.ts";
import { slidingWindow } from "./sliding_window.ts";
import { slidingLog } from "./sliding_log.ts";

export type {
  Algorithm,
  AlgorithmSpec,
  PackedState,
  Step,
  Verdict,
  WindowSpec,
} from "./algorithm.ts";
export { MAX_PACKED_SIZE } from "./algorithm.ts";
export { windowBounds } from "./fixed_window.ts";

export function compileAlgorithm(spec: AlgorithmSpec): Algorithm {
  switch (spec.kind) {
    case "token_bucket":
      return tokenBucket(spec) as Algorithm;
    case "leaky_bucket":
      return leakyBucket(spec) as Algorithm;
    case "fixed_window":
      return fixedWindow(spec.limit, spec.window) as Algorithm;
    case "sliding_window":
      return slidingWindow(spec.limit, spec.perMs) as Algorithm;
    case "sliding_log":
      return slidingLog(spec.limit, spec.perMs) as Algorithm;
  }
}
