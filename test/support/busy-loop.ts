/**
 * Keeps this process's event loop busy, as a burst of requests would (30 ms of work per turn, other
 * callbacks and I/O still run between turns), until the returned function is called.
 */
export function keepLoopBusy(): () => void {
  const timer = setInterval(() => {
    const end = performance.now() + 30;
    while (performance.now() < end);
  }, 0);
  return () => clearInterval(timer);
}
