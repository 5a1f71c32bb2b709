/**
 * A warning that a failure repeating for as long as it lasts (a database outage seen by a poll
 * every second, every connection of a pool ending at once) writes at most once per `intervalMs`:
 * the first occurrence at once, later ones counted and named in the next line that is written.
 */
export class RepeatedWarning {
  private writtenAt = -Infinity;
  private notWritten = 0;

  /**
   * @param write writes one line (e.g. a Nest logger's `warn`)
   * @param intervalMs the least time between two lines, in ms
   */
  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs = 10_000,
  ) {}

  /** Writes `message` now, or counts it when a line was written less than `intervalMs` ago. */
  report(message: string): void {
    const now = Date.now();
    if (now - this.writtenAt < this.intervalMs) {
      this.notWritten += 1;
      return;
    }
    const more = this.notWritten > 0 ? ` (${this.notWritten} more like it in the last ${Math.round((now - this.writtenAt) / 1000)} s)` : '';
    this.writtenAt = now;
    this.notWritten = 0;
    this.write(`${message}${more}`);
  }
}
