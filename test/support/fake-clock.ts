import { Clock } from '../../src/common/clock.js';

/** A clock that only moves when told to. */
export class FakeClock extends Clock {
  private current = new Date();

  now(): Date {
    return new Date(this.current);
  }

  advance(seconds: number): void {
    this.current = new Date(this.current.getTime() + seconds * 1000);
  }
}
