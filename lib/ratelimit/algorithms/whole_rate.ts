/**
 * `rate` per `perMs` with a whole-number rate where one exists (0.3 per 1s is
 * 3 per 10s): the same speed, but the bucket arithmetic, which counts in units
 * of 1/perMs, then stays in exact integers instead of accumulating rounding.
 */
export function wholeRate(
  rate: number,
  perMs: number,
  capacity: number,
): { rate: number; perMs: number } {
  let scale = 1;
  for (let digits = 0; digits <= 6; digits++, scale *= 10) {
    const scaled = rate * scale;
    const whole = Math.round(scaled);
    if (Math.abs(scaled - whole) > 1e-9 * scale) continue;
    // Units reach capacity × perMs: keep them exactly representable.
    if (capacity * perMs * scale > Number.MAX_SAFE_INTEGER) break;
    return { rate: whole, perMs: perMs * scale };
  }
  return { rate, perMs };
}
