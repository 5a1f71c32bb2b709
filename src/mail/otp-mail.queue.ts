import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type JobHelpers, Logger as WorkerLogger, type Runner, run } from 'graphile-worker';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { DeviceType } from '../sessions/entities/device.entity.js';
import { deriveKey, open, seal } from '../security/sealed-box.js';
import { MailDeliveryError, MailService } from './mail.service.js';
import { OTP_MAIL_TASK, type OtpMail, type OtpMailJob, type OtpMailPayload } from './otp-mail.job.js';
import { OtpMailRelay } from './otp-mail.relay.js';

/** Seconds between a replica's scans for due retries (new jobs arrive through LISTEN/NOTIFY at once). */
const WORKER_POLL_INTERVAL_MS = 1_000;

/**
 * Durable delivery of login codes. `send_otp` (SQL) writes the sealed mail to `mail_outbox` in
 * the transaction of its session, so there is no session without its mail and no mail for a
 * rolled-back request; OtpMailRelay hands outbox rows to graphile-worker in batches (its
 * documented `add_jobs()`); this class runs graphile-worker's runner, whose workers LISTEN for new
 * jobs and send them. A transient SMTP failure throws, and graphile-worker retries the job with
 * exponential backoff until the code has expired; a permanent (5xx) rejection, an expired code or
 * the last attempt settle the job without a retry. A settled mail's outbox row is deleted and
 * graphile-worker deletes the completed job: nothing of the mail remains.
 */
@Injectable()
export class OtpMailQueue implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OtpMailQueue.name);
  private readonly key: Buffer;
  private runner: Runner | null = null;
  /**
   * The worker's connections. Ours rather than graphile-worker's own so that its `error` listener
   * outlives the runner (graphile-worker removes its listeners on stop, and a connection that the
   * embedded PostgreSQL's shutdown then terminated crashed the process) and so that shutdown can
   * close every connection before the database stops.
   */
  private pool: pg.Pool | null = null;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly mail: MailService,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    private readonly relay: OtpMailRelay,
  ) {
    this.key = deriveKey(config.appSecret, 'otp-mail-job');
  }

  async onApplicationBootstrap(): Promise<void> {
    const { url } = this.dataSource.options as { url: string };
    // run() installs or upgrades graphile-worker's own schema (under its own lock) before it starts.
    const { concurrency } = this.config.mail;
    const pool = new pg.Pool({ connectionString: url, max: concurrency + 2 });
    const lost = (error: Error) => this.logger.warn(`Mail worker: a database connection was lost: ${error.message}`);
    pool.on('error', lost); // idle connections
    pool.on('connect', (client) => client.on('error', lost)); // checked-out ones (graphile-worker checks both)
    this.pool = pool;
    this.runner = await run({
      pgPool: pool,
      concurrency,
      pollInterval: WORKER_POLL_INTERVAL_MS,
      noHandleSignals: true, // Nest's shutdown hooks stop it (onApplicationShutdown)
      logger: this.workerLogger(),
      // graphile-worker docs, "Performance": jobs finished in the same tick are settled in one
      // query. Its localQueue (fetching jobs ahead for the whole pool) stays off: in 0.18 a runner
      // stopped while that queue holds jobs fails to hand them back ("Cannot background something
      // when the queue is already released"), leaving them locked for hours, past their codes' expiry.
      preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
      taskList: { [OTP_MAIL_TASK]: (payload, helpers) => this.runJob(payload as OtpMailJob, helpers) },
    });
    this.relay.start();
    this.metrics.registerMailQueueDepth(() => this.relay.depth());
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay.stop();
    await this.runner?.stop();
    this.runner = null;
    await this.relay.flushSettled(); // the mails its last jobs settled
    await this.pool?.end();
    this.pool = null;
  }

  /** The outbox payload of a session's code mail, for `send_otp`: the code sealed to the session id. */
  payloadFor(mail: OtpMail): OtpMailPayload {
    return {
      to: mail.to,
      sealedCode: seal(this.key, mail.code, mail.sessionId),
      expiresAt: mail.expiresAt.toISOString(),
      validSeconds: this.config.otp.ttl,
      deviceType: mail.deviceType,
    };
  }

  /** Hands mails queued by a request of this replica to the worker now (call after the commit). */
  wake(): void {
    this.relay.wake();
  }

  /**
   * Drops the mails whose code has expired: their outbox rows, and their queued jobs through
   * graphile-worker's documented `remove_job()` (a job a worker holds is only kept from retrying).
   * @returns the number of outbox rows deleted
   */
  purgeExpired(now: Date, batch: number): Promise<number> {
    return this.relay.purgeExpired(now, batch);
  }

  /** One attempt of one job. @throws Error for a transient failure, so that graphile-worker retries */
  private async runJob(job: OtpMailJob, helpers: JobHelpers): Promise<void> {
    const lastAttempt = helpers.job.attempts >= helpers.job.max_attempts;
    const retry = await this.deliver(job, lastAttempt);
    if (retry) throw new Error(retry);
    this.relay.settle(job.sessionId, job.revision);
  }

  /** @returns null when the mail is settled (sent, rejected, expired), else why a retry is due */
  private async deliver(job: OtpMailJob, lastAttempt: boolean): Promise<string | null> {
    const { sessionId, to, sealedCode, expiresAt, validSeconds, locale, deviceType } = job;
    if (new Date(expiresAt) <= this.clock.now()) {
      this.logger.warn(`Mail for session ${sessionId} dropped: its code expired before it could be sent`);
      this.metrics.mailsFailed.inc();
      return null;
    }
    try {
      await this.mail.sendOtp(to, open(this.key, sealedCode, sessionId), validSeconds, { locale, deviceType });
      return null;
    } catch (error) {
      const permanent = error instanceof MailDeliveryError ? error.permanent : true;
      if (permanent || lastAttempt) {
        this.metrics.mailsFailed.inc();
        this.logger.error(`Mail for session ${sessionId} ${permanent ? 'rejected' : 'failed on its last attempt'}, not retried: ${describe(error)}`);
        return null;
      }
      this.logger.warn(`Mail for session ${sessionId} failed, will retry: ${describe(error)}`);
      return describe(error);
    }
  }

  /** graphile-worker's log lines through Nest's logger; its debug and info chatter, and its line per failed attempt, are dropped. */
  private workerLogger(): WorkerLogger {
    const logger = new Logger('MailWorker');
    return new WorkerLogger(() => (level, message) => {
      // A failed attempt is already logged by deliver(): one warning when it will be retried.
      if (message.startsWith('Failed task ')) return;
      if (level === 'error') logger.error(message);
      else if (level === 'warning') logger.warn(message);
    });
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
