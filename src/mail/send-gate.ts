import { type EventLoopUtilization, performance } from 'node:perf_hooks';

/** How often the event loop's utilization is read (ms): the window "busy" is decided over. */
export const SAMPLE_MS = 100;
/** The share of a window the event loop spent running callbacks from which it counts as busy. */
export const BUSY_AT = 0.9;

/**
 * Lets the service's requests go first when its process also sends the login mail
 * (MAIL_WORKER=inline): while the event loop was busy for BUSY_AT of the last SAMPLE_MS or more
 * (Node's `performance.eventLoopUtilization()`), sends start one at a time, in the order they
 * asked; as soon as a window is not busy, every waiting send starts. The mail is never held back
 * entirely: one send always proceeds. When the mail itself fills the loop (a backlog drained with
 * no requests), sending one at a time frees it within a window, and the sends go on at the rate the
 * loop allows.
 */
export class SendGate {
  private busy = false;
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private timer: NodeJS.Timeout | null = null;
  /** Whether a send started while the loop was busy has not ended yet (the one send let through). */
  private slotTaken = false;
  /** Sends waiting for the slot; resolved with whether they hold it (false: the loop has room again). */
  private waiting: ((holdsSlot: boolean) => void)[] = [];

  /** Starts reading the event loop's utilization every SAMPLE_MS (a timer that does not keep the process up). */
  start(): void {
    this.last = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  /** Stops holding sends back (a shutdown sends what it has at once) and lets every waiting send start. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.busy = false;
    this.releaseAll();
  }

  /**
   * Waits until a send may start: at once when the loop has room, else until the send let through
   * before it has ended or the loop has room again.
   * @returns `leave`: call it once when the send has ended (sent or failed); `held`: whether the
   *   send waited (for as long as the requests kept the loop busy: what was true of the mail before
   *   may no longer be)
   */
  async enter(): Promise<SendPass> {
    if (!this.busy && this.waiting.length === 0) return AT_ONCE;
    if (!this.slotTaken) {
      this.slotTaken = true;
      return { leave: this.leaveSlot, held: false };
    }
    const holdsSlot = await new Promise<boolean>((resolve) => this.waiting.push(resolve));
    return { leave: holdsSlot ? this.leaveSlot : NOTHING_TO_LEAVE, held: true };
  }

  private readonly leaveSlot = (): void => {
    const next = this.waiting.shift();
    if (next) next(true);
    else this.slotTaken = false;
  };

  private sample(): void {
    const now = performance.eventLoopUtilization();
    this.busy = performance.eventLoopUtilization(now, this.last).utilization >= BUSY_AT;
    this.last = now;
    if (!this.busy) this.releaseAll();
  }

  private releaseAll(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve(false);
  }
}

/** What SendGate.enter hands a send that may start. */
export interface SendPass {
  leave: () => void;
  held: boolean;
}

const NOTHING_TO_LEAVE = (): void => {};
/** A send that did not wait and holds no slot. */
export const AT_ONCE: SendPass = { leave: NOTHING_TO_LEAVE, held: false };
