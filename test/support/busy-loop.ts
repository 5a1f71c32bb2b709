/**
 * Keeps this process's event loop busy, as a burst of requests would (30 ms of work per turn, other
 * callbacks and I/O still run between turns), until the returned function is called. The turns are
 * chained with setImmediate, so the loop never waits for I/O in between: on a machine short of CPU,
 * a late wake-up from such a wait would count as idle time and the loop would not look busy.
 */
export function keepLoopBusy(): () => void {
  let running = true;
  const turn = () => {
    if (!running) return;
    const end = performance.now() + 30;
    while (performance.now() < end);
    setImmediate(turn);
  };
  setImmediate(turn);
  return () => {
    running = false;
  };
}
