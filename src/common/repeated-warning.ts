/**
 * A warning that a failure repeating for as long as it lasts (a database outage seen by a poll
 * every second, every connection of a pool ending at once, every queued mail failing at each retry)
 * writes at most once per `intervalMs`: the first occurrence at once; the ones within the interval
 * are held back, and when it ends the latest of them is written with the number of the others
 * (`… (N more like it in the last 10 s)`), so that none goes uncounted even if the failure stops.
 */
export class RepeatedWarning {
  private writtenAt = -Infinity;
  private heldBack = '';
  private notWritten = 0;
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param write writes one line (e.g. a Nest logger's `warn`)
   * @param intervalMs the least time between two lines, in ms
   */
  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs = 10_000,
  ) {}

  /** Writes `message` now, or holds it back when a line was written less than `intervalMs` ago. */
  report(message: string): void {
    const now = Date.now();
    if (now - this.writtenAt >= this.intervalMs) {
      this.writtenAt = now;
      this.write(message);
      return;
    }
    this.heldBack = message;
    this.notWritten += 1;
    if (this.timer) return;
    // The end of this interval writes what was held back (a timer that does not keep the process up).
    this.timer = setTimeout(() => this.flush(), this.writtenAt + this.intervalMs - now);
    this.timer.unref();
  }

  /** Writes the latest message held back, counting the others; starts the next interval. */
  private flush(): void {
    this.timer = null;
    const now = Date.now();
    const others = this.notWritten - 1;
    const more = others > 0 ? ` (${others} more like it in the last ${Math.round((now - this.writtenAt) / 1000)} s)` : '';
    const line = `${this.heldBack}${more}`;
    this.heldBack = '';
    this.notWritten = 0;
    this.writtenAt = now;
    this.write(line);
  }
}
