import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import PgBoss from 'pg-boss';
import type { DataSource, EntityManager } from 'typeorm';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { deriveKey, open, seal } from '../security/sealed-box.js';
import { MailDeliveryError, MailService } from './mail.service.js';

export const OTP_MAIL_QUEUE = 'otp-mail';
export const PGBOSS_SCHEMA = 'pgboss';

/** A mail job as stored in PostgreSQL: the code only sealed (AES-256-GCM, bound to the session). */
export interface OtpMailJob {
  sessionId: string;
  to: string;
  sealedCode: string;
  /** ISO 8601; past it the code is useless and the job is dropped. */
  expiresAt: string;
  validSeconds: number;
}

/** The job insert (migration 1764576000000): pg-boss `send()`'s row, with the queue's retry settings. */
const ENQUEUE_SQL = 'SELECT enqueue_otp_mail($1, $2)';

/** A login code to mail. */
export interface OtpMail {
  sessionId: string;
  to: string;
  code: string;
  /** When the code stops working; the job is dropped after it. */
  expiresAt: Date;
}

const BATCH_SIZE = 50;
/** Fetch loops per replica: while one waits for its batch's slowest mail, another sends. */
const WORKER_LOOPS = 2;
/** Arbitrary constant naming the mail queue's setup among PostgreSQL advisory locks. */
const QUEUE_SETUP_LOCK_KEY = 4_130_817_205;

/**
 * Durable delivery of login codes through a PostgreSQL job queue (pg-boss). A job is inserted in
 * the same transaction as its session (or resend), so there is no session without its mail and no
 * mail for a rolled-back session. Workers (one per replica; pg-boss hands each job to one worker)
 * send it, retry transient SMTP failures with exponential backoff until the code expires, never
 * retry a permanent (5xx) rejection, and delete the job once it is settled, so no archive keeps it.
 */
@Injectable()
export class OtpMailQueue implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OtpMailQueue.name);
  private readonly key: Buffer;
  private boss: PgBoss | null = null;
  private readonly workerIds: string[] = [];

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly mail: MailService,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
  ) {
    this.key = deriveKey(config.appSecret, 'otp-mail-job');
  }

  async onApplicationBootstrap(): Promise<void> {
    const { url } = this.dataSource.options as { url: string };
    const boss = new PgBoss({ connectionString: url, schema: PGBOSS_SCHEMA, max: 4, supervise: true, schedule: false });
    boss.on('error', (error) => this.logger.warn(`Mail queue: ${error.message}`));
    await boss.start();
    // pg-boss's create_queue deadlocks when replicas starting together run it at once: take turns.
    await this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [QUEUE_SETUP_LOCK_KEY]);
      await boss.createQueue(OTP_MAIL_QUEUE, {
        name: OTP_MAIL_QUEUE,
        retryLimit: 16,
        retryDelay: 1,
        retryBackoff: true,
        expireInSeconds: 60,
        retentionSeconds: Math.max(60, this.config.otp.ttl),
      });
    });
    for (let loop = 0; loop < WORKER_LOOPS; loop++) {
      this.workerIds.push(
        await boss.work<OtpMailJob>(OTP_MAIL_QUEUE, { batchSize: BATCH_SIZE, pollingIntervalSeconds: 0.5 }, (jobs) =>
          this.deliverBatch(boss, jobs),
        ),
      );
    }
    this.metrics.registerMailQueueDepth(() => boss.getQueueSize(OTP_MAIL_QUEUE));
    this.boss = boss;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.boss?.stop({ graceful: true, timeout: 5_000, wait: true });
    this.boss = null;
  }

  /**
   * The queue and job data for a session's code mail, for `start_login` (SESSION_SQL), which inserts
   * it with the session. The code is sealed (AES-256-GCM, bound to the session id).
   */
  jobFor(mail: OtpMail): { queue: string; data: OtpMailJob } {
    return {
      queue: OTP_MAIL_QUEUE,
      data: {
        sessionId: mail.sessionId,
        to: mail.to,
        sealedCode: seal(this.key, mail.code, mail.sessionId),
        expiresAt: mail.expiresAt.toISOString(),
        validSeconds: this.config.otp.ttl,
      },
    };
  }

  /**
   * Adds the mail for a session's code to the queue inside the caller's transaction, with the
   * queue's retry settings (`enqueue_otp_mail`, the insert `start_login` uses too).
   */
  async enqueue(manager: EntityManager, mail: OtpMail): Promise<void> {
    const { queue, data } = this.jobFor(mail);
    await manager.query(ENQUEUE_SQL, [queue, data]);
  }

  /**
   * Deletes mail jobs whose code has expired and that no worker holds (e.g. retries exhausted,
   * or all workers were down), from the queue and from pg-boss's archive.
   * @returns the number of jobs deleted
   */
  async purgeExpired(now: Date): Promise<number> {
    let deleted = 0;
    for (const table of ['job', 'archive']) {
      const [, count]: [unknown, number] = await this.dataSource.query(
        `DELETE FROM ${PGBOSS_SCHEMA}.${table}
          WHERE name = $1 AND state <> 'active' AND (data->>'expiresAt')::timestamptz <= $2`,
        [OTP_MAIL_QUEUE, now],
      );
      deleted += count;
    }
    return deleted;
  }

  /** Wakes this replica's worker now instead of at its next poll (call after the commit). */
  wake(): void {
    if (!this.boss) return;
    for (const id of this.workerIds) this.boss.notifyWorker(id);
  }

  /** Sends a batch in parallel, then deletes every settled job in one statement. */
  private async deliverBatch(boss: PgBoss, jobs: PgBoss.Job<OtpMailJob>[]): Promise<void> {
    const settled = await Promise.all(jobs.map((job) => this.deliver(boss, job)));
    const done = jobs.filter((_job, i) => settled[i]).map((job) => job.id);
    if (done.length > 0) await boss.deleteJob(OTP_MAIL_QUEUE, done);
  }

  /** @returns true when the job is settled (sent, rejected, or its code expired) and can be deleted */
  private async deliver(boss: PgBoss, job: PgBoss.Job<OtpMailJob>): Promise<boolean> {
    const { sessionId, to, sealedCode, expiresAt, validSeconds } = job.data;
    if (new Date(expiresAt) <= this.clock.now()) {
      this.logger.warn(`Mail for session ${sessionId} dropped: its code expired before it could be sent`);
      this.metrics.mailsFailed.inc();
      return true;
    }
    try {
      await this.mail.sendOtp(to, open(this.key, sealedCode, sessionId), validSeconds);
      return true;
    } catch (error) {
      const permanent = error instanceof MailDeliveryError ? error.permanent : true;
      const reason = error instanceof Error ? error.message : String(error);
      if (permanent) {
        this.metrics.mailsFailed.inc();
        this.logger.error(`Mail for session ${sessionId} rejected, not retried: ${reason}`);
        return true;
      }
      this.logger.warn(`Mail for session ${sessionId} failed, will retry: ${reason}`);
      await boss.fail(OTP_MAIL_QUEUE, job.id, { message: reason });
      return false;
    }
  }
}
