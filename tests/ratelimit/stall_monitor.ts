/**
 * How long this process's event loop stalled (a loaded or frozen machine):
 * a 5 ms timer that measures how late it fires. Timing measured across a
 * stall says nothing about the code under test.
 */
export function stallMonitor(): { longest(): number; reset(): void; stop(): void } {
  let longest = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last - 5);
    last = now;
  }, 5);
  // Not a reason to keep the process or a test running.
  Deno.unrefTimer(timer);
  return {
    longest: () => Math.round(longest),
    reset: () => {
      longest = 0;
      last = performance.now();
    },
    stop: () => clearInterval(timer),
  };
}
