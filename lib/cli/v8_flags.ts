/**
 * V8 heap settings the gateway runs with. They size the heap before any code
 * runs, so the program cannot set them itself: every launcher passes them —
 * `deno compile` bakes them into the binary (scripts/compile.ts), `deno task
 * start` and the bench and test harnesses that start the gateway as a process
 * use `V8_FLAGS_ARG`.
 *
 * Why, measured under wrk -c64 on a 2-core VM (README, Performance; bench/NOTES.md): without
 * them a loaded gateway's V8 heap grows to 80-120 MB although what is live
 * after a full GC is under 20 MB.
 *
 * - `--max-semi-space-size=8`: each of the young generation's two semi-spaces
 *   holds at most 8 MB instead of 16. A request's objects die young; a bigger
 *   young generation only delays their collection, it holds 16 MB more for it.
 * - `--heap-growing-percent=50`: after a full GC the old generation may grow
 *   by half its live size before the next one, not up to four times it. With
 *   100 (until 2026-12-07) the JWT configuration on the Redis store peaked at
 *   129-152 MB under wrk -c64 and failed the 150 MB bound in two CI runs of
 *   four; with 50 at 121-142 MB in ten runs. The cost, six alternated 4 s
 *   pairs of routing only: p99 about 1 ms more (median 6.3 against 5.3 ms; the
 *   bare proxy's is near 10), req/s and CPU per request the same within the
 *   host's noise (means 21.9k and 20.3k). On 2026-11-24, when a request
 *   allocated twice what it does now, 50 had cost 3 ms.
 *
 * - `--no-memory-reducer`: a gateway idle for a few seconds had its heap
 *   shrunk (48 MB committed to 15), and the first second of traffic after
 *   the lull then ran through a burst of young-generation GCs while the heap
 *   regrew: p99 17-34 ms in that second (wrk -c64 -d1s after 70 s idle),
 *   against 12-14 ms with the reducer off, where the bare proxy's steady p99
 *   is 9-12 ms. Idle RSS is the same either way (120 MB): the pages the
 *   reducer frees are not returned to the OS.
 *
 * - `--concurrent-recompilation-queue-length=2`: at most two optimising
 *   compile jobs in flight instead of eight. A fresh gateway under load
 *   compiles much at once, and the jobs' memory lands in a malloc arena of a
 *   V8 worker thread that keeps it: in 3 of 6 runs (JWT on Redis, wrk -c64,
 *   beside another test) that arena held 19-24 MB more and the peak RSS was
 *   149-155 MB; with 2, 0 of 6 and 132-138 MB. Steady-state CPU and p99 were
 *   the same (6 alternated rounds).
 *
 * - `--no-maglev-destroy-on-background`: a finished Maglev compile job is freed
 *   on the main thread when its code is installed, not queued for a V8 worker
 *   thread. Workers take that queue only when no compile waits, so during a
 *   fresh gateway's burst of compiles finished jobs piled up, and their memory
 *   grew the workers' malloc arenas, which keep it once freed: 6-23 MB that
 *   varied from run to run (with `--concurrent-maglev-max-threads=1`, 27 MB
 *   every time; with the flag, 2-4 MB). tests/memory/rss_test.ts, 14 alternated
 *   runs each way on 2026-12-07: JWT on Redis 115-119 MB against 120-141,
 *   routing only 104-108 against 105-114. Six alternated rounds of a fresh
 *   gateway each (wrk -c64, 5 s cold then 4 s warm, JWT on Redis and routing
 *   only, busy host): CPU per request and p99 no worse, cold or warm. With
 *   it, the queue length above no longer shows (8: 117-120 MB in 4 runs); it
 *   stays, as it cost nothing measured.
 *
 * Together: 70 MB less peak RSS under load (197-200 MB without), for a few us
 * more GC per request.
 */
export const V8_FLAGS: readonly string[] = [
  "--max-semi-space-size=8",
  "--heap-growing-percent=50",
  "--no-memory-reducer",
  "--concurrent-recompilation-queue-length=2",
  "--no-maglev-destroy-on-background",
];

/** The argument that passes them to `deno run` and `deno compile`. */
export const V8_FLAGS_ARG = `--v8-flags=${V8_FLAGS.join(",")}`;
