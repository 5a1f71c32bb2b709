import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type JobHelpers, Logger as WorkerLogger, makeWorkerUtils, type Runner, run, runMigrations } from 'graphile-worker';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import { Clock } from '../common/clock.js';
import { RepeatedWarning } from '../common/repeated-warning.js';
import { toPublicId } from '../common/public-id.js';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { deriveKey, open } from '../security/sealed-box.js';
import { MailDeliveryError, MailService } from './mail.service.js';
import { OTP_MAIL_TASK, type OtpMailJobPayload, type OutboxMail } from './otp-mail.job.js';
import { OtpMailRelay } from './otp-mail.relay.js';
import { AT_ONCE, SendGate } from './send-gate.js';

/** Seconds between a runner's scans for due retries (new jobs arrive through LISTEN/NOTIFY at once). */
const WORKER_POLL_INTERVAL_MS = 1_000;

/**
 * Sends the login-code mails that OtpMailRelay queued in graphile-worker: runs graphile-worker's
 * runner, whose workers LISTEN for new jobs and send them (MAIL_CONCURRENCY at once). A transient
 * SMTP failure throws, and graphile-worker retries the job with exponential backoff until the code
 * has expired; a permanent (5xx) rejection, an expired code or the last attempt settle the job
 * without a retry. A settled mail's outbox row is deleted (OtpMailRelay.settle) and graphile-worker
 * deletes the completed job: nothing of the mail remains. The counters `mails_sent_total`,
 * `mails_failed_total` and `mail_send_errors_total` count in the process that runs this.
 *
 * Started and stopped by its owner: OtpMailQueue in the service process when MAIL_WORKER=inline,
 * MailWorkerLifecycle in the mail worker process (`dist/mail-worker.js`).
 */
@Injectable()
export class OtpMailWorker {
  private readonly logger = new Logger(OtpMailWorker.name);
  private readonly key: Buffer;
  private runner: Runner | null = null;
  /**
   * The runner's connections. Ours rather than graphile-worker's own so that its `error` listener
   * outlives the runner (graphile-worker removes its listeners on stop, and a connection that the
   * embedded PostgreSQL's shutdown then terminated crashed the process) and so that shutdown can
   * close every connection before the database stops.
   */
  private pool: pg.Pool | null = null;
  /** In the service process: its requests go first while they keep the event loop busy (SendGate). */
  private gate: SendGate | null = null;
  /** Jobs in progress: graphile-worker job id → the worker that locked it (`job.locked_by`) and its mails not settled yet. */
  private readonly sending = new Map<string, { workerId: string; unsettled: number }>();
  /**
   * An SMTP outage fails every queued mail at each of its retries, and ends with their codes
   * expiring: one line per 10 s for each of the two, the others counted in it (every failure is
   * counted in the metrics all the same).
   */
  private readonly retryWarning = new RepeatedWarning((line) => this.logger.warn(line));
  private readonly expiredWarning = new RepeatedWarning((line) => this.logger.warn(line));
  /** A process with the wrong APP_SECRET fails every mail at every attempt: one error per 10 s too. */
  private readonly secretError = new RepeatedWarning((line) => this.logger.error(line));

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

  /**
   * Starts graphile-worker's runner, which installs or upgrades graphile-worker's own schema (under
   * its own lock) first.
   * @param requestsFirst in a process that also serves requests: while they keep its event loop
   *   busy, one send at a time (SendGate)
   * @throws when PostgreSQL fails
   */
  async start({ requestsFirst = false } = {}): Promise<void> {
    const { concurrency } = this.config.mail;
    if (requestsFirst) {
      this.gate = new SendGate();
      this.gate.start();
    }
    const pool = new pg.Pool({ connectionString: this.url, max: concurrency + 2 });
    // PostgreSQL stopping or restarting ends every connection at once, and graphile-worker
    // reconnects by itself: one line per 10 s, each connection counted once (pg-pool passes an idle
    // connection's error on to the pool too).
    const warning = new RepeatedWarning((line) => this.logger.warn(line));
    const counted = new WeakSet<object>();
    const lost = (client: object, error: Error) => {
      if (counted.has(client)) return;
      counted.add(client);
      warning.report(`Mail worker: lost a database connection: ${error.message}`);
    };
    pool.on('error', (error, client) => lost(client, error)); // idle connections
    pool.on('connect', (client) => client.on('error', (error) => lost(client, error))); // checked-out ones (graphile-worker checks both)
    this.pool = pool;
    this.runner = await run({
      pgPool: pool,
      concurrency,
      pollInterval: WORKER_POLL_INTERVAL_MS,
      noHandleSignals: true, // the process's own shutdown stops it (Nest's shutdown hooks call stop())
      logger: this.workerLogger(),
      // graphile-worker's defaults for settling jobs: one query per finished job (a job carries up
      // to MAILS_PER_JOB mails), retried on a deadlock or a lost connection. Its batching options
      // (completeJobBatchDelay, failJobBatchDelay) stay off: in 0.18 a batch that fails once is not
      // retried, and the runner shuts down for good (graphile/worker#636; seen here: "deadlock
      // detected" under the bench's load, after which no mail was sent). Its localQueue (fetching
      // jobs ahead for the whole pool) stays off too: in 0.18 a runner stopped while that queue holds
      // jobs fails to hand them back ("Cannot background something when the queue is already
      // released"), leaving them locked for hours, past their codes' expiry.
      taskList: { [OTP_MAIL_TASK]: (payload, helpers) => this.runJob(payload as OtpMailJobPayload, helpers) },
    });
  }

  /** Stops taking jobs, lets the sends in progress finish, deletes their outbox rows, closes the pool. */
  async stop(): Promise<void> {
    this.gate?.stop(); // the sends it holds back go now: the runner's stop waits for them
    this.gate = null;
    await this.runner?.stop();
    this.runner = null;
    await this.relay.flushSettled(); // the mails its last jobs settled
    await this.pool?.end();
    this.pool = null;
  }

  /**
   * For a shutdown whose grace period is over while sends are still in progress: unlocks their jobs
   * through graphile-worker's documented `forceUnlockWorkers` (for workers that were terminated), so
   * that another mail worker, or this one restarted, sends them at once. Without it they would stay
   * locked by this dead process for graphile-worker's 4 hours, past their codes' expiry. A job's mails
   * already sent are not sent again (their outbox rows are deleted first); one the SMTP server was
   * taking at that moment is sent twice (the same code): at least once.
   */
  async abandon(): Promise<void> {
    if (!this.pool || this.sending.size === 0) return;
    const jobs = [...this.sending.values()];
    const sends = jobs.reduce((sum, job) => sum + job.unsettled, 0);
    const workerIds = [...new Set(jobs.map((job) => job.workerId))];
    await this.relay.flushSettled(); // the mails of those jobs already sent are not sent again
    const utils = await makeWorkerUtils({ pgPool: this.pool, logger: this.workerLogger() });
    try {
      await utils.forceUnlockWorkers(workerIds);
    } finally {
      await utils.release();
    }
    this.logger.warn(`${sends} send(s) still in progress handed back to the queue, for a running mail worker to retry`);
  }

  /**
   * Installs or upgrades graphile-worker's schema (its documented `runMigrations`, under its own
   * lock) without starting a runner: for a process that queues jobs (the relay's `add_jobs()`) but
   * sends nothing (MAIL_WORKER=off), on a database where no runner may have started yet.
   */
  async installSchema(): Promise<void> {
    await runMigrations({ connectionString: this.url, logger: this.workerLogger() });
  }

  private get url(): string {
    return (this.dataSource.options as { url: string }).url;
  }

  /**
   * One attempt of one job: reads its mails from the outbox and sends them at once (the SMTP pool
   * keeps MAIL_CONCURRENCY connections; the other sends wait for one). A mail whose outbox revision
   * is gone is not sent (settled, expired, or replaced by a resend).
   * @returns for a batch job, one settled promise per entry: graphile-worker retries the job with
   *   the entries that rejected (its "batch jobs")
   * @throws Error for a transient failure of a one-mail job queued before batches, or when
   *   PostgreSQL fails (the whole job is retried)
   */
  private async runJob(payload: OtpMailJobPayload, helpers: JobHelpers): Promise<Promise<void>[] | undefined> {
    const refs = Array.isArray(payload) ? payload : [payload];
    const { id, locked_by: workerId, attempts, max_attempts: maxAttempts } = helpers.job;
    const job = { workerId: workerId ?? '', unsettled: refs.length };
    if (workerId) this.sending.set(id, job);
    try {
      const mails = new Map((await this.relay.mailsToSend(refs, this.clock.now())).map((mail) => [mail.sessionId, mail]));
      job.unsettled = mails.size;
      const sends = refs.map(async ({ sessionId }) => {
        const mail = mails.get(sessionId);
        if (!mail) return;
        const delivery = await this.deliver(mail, attempts, attempts >= maxAttempts).finally(() => job.unsettled--);
        if ('retry' in delivery) throw new Error(delivery.retry);
        // An expired mail counts as failed where its row is deleted: here, or in the sweep's purge
        // if that deleted it first (then the sweep counted it). Counted once either way.
        this.relay.settle(mail.sessionId, mail.revision, delivery.expired ? () => this.metrics.mailsFailed.inc() : undefined);
      });
      const results = await Promise.allSettled(sends);
      if (Array.isArray(payload)) return sends;
      if (results[0].status === 'rejected') throw results[0].reason;
      return undefined;
    } finally {
      this.sending.delete(id);
    }
  }

  /**
   * @returns `{ expired }` when the mail is settled (sent, rejected, not usable, or `expired: true`
   *   when its code expired before it could be sent), else `{ retry }`: why a retry is due
   */
  private async deliver(mail: OutboxMail, attempt: number, lastAttempt: boolean): Promise<{ expired: boolean } | { retry: string }> {
    const { sessionId, payload } = mail;
    const session = toPublicId('ses', sessionId); // the id clients and the API show
    const notToSend = this.notToSend(mail, session);
    if (notToSend) return notToSend;
    const code = this.openCode(payload.sealedCode, sessionId);
    if (code === null) {
      this.metrics.mailSendErrors.inc();
      this.secretError.report(
        `Mail for session ${session} not sent${lastAttempt ? ' on its last attempt' : ', will retry until its code expires'}: ` +
          'its sealed code does not open with this process\'s APP_SECRET. Every service replica and mail worker needs the same APP_SECRET',
      );
      if (!lastAttempt) return { retry: 'the sealed code does not open with this APP_SECRET' };
      this.metrics.mailsFailed.inc();
      return SETTLED;
    }
    const pass = this.gate ? await this.gate.enter() : AT_ONCE;
    try {
      if (pass.held) {
        // It waited while requests kept the loop busy, maybe for seconds: its code may have expired,
        // its session been confirmed or revoked, or a resend replaced it (then it is gone) meanwhile.
        // Read again; if PostgreSQL fails, the job is retried.
        const [now] = await this.relay.mailsToSend([mail], this.clock.now());
        const stale = now ? this.notToSend(now, session) : SETTLED;
        if (stale) return stale;
      }
      return await this.send(mail, code, session, attempt, lastAttempt);
    } finally {
      pass.leave();
    }
  }

  private async send(mail: OutboxMail, code: string, session: string, attempt: number, lastAttempt: boolean): Promise<{ expired: boolean } | { retry: string }> {
    const { to, validSeconds, deviceType } = mail.payload;
    try {
      const started = Date.now();
      await this.mail.sendOtp(to, code, validSeconds, { locale: mail.locale, deviceType });
      this.logger.log(`Mail for session ${session} sent in ${Date.now() - started} ms (attempt ${attempt})`);
      return SETTLED;
    } catch (error) {
      const permanent = error instanceof MailDeliveryError ? error.permanent : true;
      if (permanent || lastAttempt) {
        this.metrics.mailsFailed.inc();
        this.logger.error(`Mail for session ${session} ${permanent ? 'rejected' : 'failed on its last attempt'}, not retried: ${describe(error)}`);
        return SETTLED;
      }
      this.retryWarning.report(`Mail for session ${session} failed, will retry: ${describe(error)}`);
      return { retry: describe(error) };
    }
  }

  /** Why a mail is settled without being sent (its code expired, or the session cannot use it), or null to send it. */
  private notToSend(mail: OutboxMail, session: string): { expired: boolean } | null {
    if (new Date(mail.payload.expiresAt) <= this.clock.now()) {
      this.expiredWarning.report(`Mail for session ${session} dropped: its code expired before it could be sent`);
      return EXPIRED;
    }
    if (!mail.codeUsable) {
      this.logger.log(`Mail for session ${session} not sent: the session can no longer use its code (revoked, confirmed or out of attempts)`);
      return SETTLED;
    }
    return null;
  }

  /**
   * The code, or null when the sealed value does not open: the process that queued it had another
   * APP_SECRET (a misconfigured replica or worker, or a changed secret). That is this process's
   * fault, not the mail's, so the job stays queued for a process that can open it.
   */
  private openCode(sealedCode: string, sessionId: string): string | null {
    try {
      return open(this.key, sealedCode, sessionId);
    } catch {
      return null;
    }
  }

  /** graphile-worker's log lines through Nest's logger; its debug and info chatter, and its line per failed attempt, are dropped. */
  private workerLogger(): WorkerLogger {
    const logger = new Logger('MailWorker');
    const listenerRetries = new RepeatedWarning((line) => logger.warn(line));
    return new WorkerLogger(() => (level, message) => {
      // A failed attempt is already logged by deliver(): one warning when it will be retried. A
      // failed UNLISTEN is a lost connection, logged by start()'s handler.
      if (message.startsWith('Failed task ') || message.startsWith('Error occurred attempting to UNLISTEN')) return;
      // It reconnects by itself, with a growing delay: a warning, at most one per 10 s.
      if (message.startsWith('Error with notify listener')) return listenerRetries.report(message);
      if (level === 'error') logger.error(message);
      else if (level === 'warning') logger.warn(message);
    });
  }
}

const SETTLED = { expired: false } as const;
const EXPIRED = { expired: true } as const;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
