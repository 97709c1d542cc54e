/** Small non-cryptographic string hashes, for spreading keys (not for secrets). */

/** FNV-1a, 32 bit: fast for short keys; `seed` varies it per table. */
export function fnv1a(s: string, seed = 0): number {
  let h = seed ^ 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * FNV-1a through murmur3's 32-bit finaliser. FNV alone leaves its top bits
 * nearly equal for keys that differ in their last characters (`u1`..`u20`,
 * sequential ids): what picks by the top bits needs the mixing.
 */
export function mixedHash(s: string, seed = 0): number {
  let h = fnv1a(s, seed);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
