import { Inject, Injectable, Logger } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { OtpMailQueue } from '../mail/otp-mail.queue.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { SessionsRepository } from './sessions.repository.js';

/** Counts of one sweep, or `skipped` when another replica was sweeping. */
export type SweepResult =
  | { skipped: true }
  | { skipped: false; expired: number; deleted: number; sendsDeleted: number; mailsDropped: number };

/** Seconds between two sweeps of one replica. */
export const SWEEP_INTERVAL = 60;
const BATCH = 5_000;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/**
 * The periodic expiry job: marks sessions past their code's or their own expiry as `expired`,
 * deletes expired and revoked sessions older than SESSION_RETENTION_DAYS, prunes OTP send
 * records no limit looks at any more, and drops mails whose code has expired (mail_outbox rows and
 * their queued jobs). One replica at a time (advisory lock), in batches.
 */
@Injectable()
export class SessionSweepService {
  private readonly logger = new Logger(SessionSweepService.name);

  constructor(
    private readonly repository: SessionsRepository,
    private readonly clock: Clock,
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly mailQueue: OtpMailQueue,
  ) {}

  @Interval('session-sweep', SWEEP_INTERVAL * 1000)
  async runScheduled(): Promise<void> {
    try {
      const result = await this.sweep();
      if (!result.skipped && result.expired + result.deleted > 0) {
        this.logger.log(`Sweep: ${result.expired} expired, ${result.deleted} deleted, ${result.sendsDeleted} send records pruned`);
      }
    } catch (error) {
      this.logger.error(`Sweep failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** One sweep at the clock's now. Safe to run from several replicas at once. */
  async sweep(): Promise<SweepResult> {
    const now = this.clock.now();
    const retentionCutoff = new Date(now.getTime() - this.config.session.retentionDays * DAY_MS);
    const sendsCutoff = new Date(now.getTime() - Math.max(HOUR_MS, this.config.otp.resendCooldown * 1000));
    const result = await this.repository.withSweepLock(async (manager) => {
      const expired = await this.drain((batch) => this.repository.expireDue(manager, now, batch));
      const deleted = await this.drain((batch) => this.repository.deleteEndedBefore(manager, retentionCutoff, batch));
      const sendsDeleted = await this.drain((batch) => this.repository.deleteSendsBefore(manager, sendsCutoff, batch));
      const mailsDropped = await this.drain((batch) => this.mailQueue.purgeExpired(now, batch));
      return { skipped: false as const, expired, deleted, sendsDeleted, mailsDropped };
    });
    if (result && result.expired > 0) this.metrics.sessionsExpired.inc({ reason: 'sweep' }, result.expired);
    if (result && result.mailsDropped > 0) {
      // Never sent: the SMTP server was unreachable, no mail worker ran, or a killed worker held them.
      this.metrics.mailsFailed.inc(result.mailsDropped);
      this.logger.warn(`Sweep: ${result.mailsDropped} login mail(s) dropped unsent: their codes expired while they waited in the queue`);
    }
    return result ?? { skipped: true };
  }

  private async drain(step: (batch: number) => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const count = await step(BATCH);
      total += count;
      if (count < BATCH) return total;
    }
  }
}
