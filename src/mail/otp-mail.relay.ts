import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { RepeatedWarning } from '../common/repeated-warning.js';
import { OTP_MAIL_JOB_KEY_PREFIX, OTP_MAIL_TASK } from './otp-mail.job.js';

/** Outbox rows handed over per statement. */
export const RELAY_BATCH = 500;
/** How often a replica looks for rows that no local request woke it for (other replicas', leftovers). */
export const RELAY_POLL_INTERVAL_MS = 1_000;
/**
 * How long a woken relay waits for more logins before its pass (ms): under load one pass, and one
 * NOTIFY, then carries the logins of this window instead of one each.
 */
export const RELAY_GATHER_MS = 5;
/** How long settled mails wait to be deleted from the outbox together, in one statement (ms). */
export const SETTLED_FLUSH_MS = 20;
/**
 * graphile-worker attempts per mail. The job drops itself once its code has expired, so this only
 * bounds a job whose code lives for hours: graphile-worker waits exp(min(attempt, 10)) s between tries.
 */
const MAX_ATTEMPTS = 25;

/**
 * One statement, so one transaction: takes up to $1 rows waiting in the outbox (skipping rows that
 * another replica's relay holds), marks them handed over, and queues one job per row through
 * graphile-worker's documented bulk function `graphile_worker.add_jobs(job_spec[])` ("Adding jobs
 * through SQL"), with the job key of the session so that a resend replaces a job still queued.
 * graphile-worker sends one NOTIFY per call, not per job. The job carries the session's locale.
 */
const RELAY_SQL = `
  WITH batch AS (
    SELECT o.session_id, o.revision, o.payload, s.locale
      FROM mail_outbox o JOIN sessions s ON s.id = o.session_id
     WHERE o.handed_over_at IS NULL
     ORDER BY o.queued_at
     LIMIT $1
       FOR UPDATE OF o SKIP LOCKED
  ), handed AS (
    UPDATE mail_outbox o SET handed_over_at = now() FROM batch b WHERE o.session_id = b.session_id
    RETURNING o.session_id
  ), specs AS (
    SELECT array_agg(ROW(
             $2::text,
             (b.payload || jsonb_build_object('sessionId', b.session_id, 'revision', b.revision, 'locale', b.locale))::json,
             NULL, NULL, $3::integer, $4::text || b.session_id, NULL, NULL
           )::graphile_worker.job_spec) AS specs
      FROM batch b
  ), queued AS (
    SELECT j.id FROM specs, LATERAL graphile_worker.add_jobs(specs.specs) j WHERE specs.specs IS NOT NULL
  )
  SELECT (SELECT count(*) FROM handed)::int AS handed, (SELECT count(*) FROM queued)::int AS queued`;

/**
 * Deletes up to $2 outbox rows whose code expired before $1 (locked in session id order, like
 * DELETE_SETTLED_SQL) and returns the sessions of those already handed over to graphile-worker.
 */
const PURGE_SQL = `
  WITH expired AS (
    SELECT session_id FROM mail_outbox WHERE expires_at <= $1 ORDER BY session_id LIMIT $2 FOR UPDATE
  ), gone AS (
    DELETE FROM mail_outbox o USING expired e WHERE o.session_id = e.session_id
    RETURNING o.session_id AS "sessionId", o.handed_over_at IS NOT NULL AS "handedOver"
  )
  SELECT * FROM gone`;

/**
 * Removes a queued job through graphile-worker's documented `remove_job(job_key)`: one job per
 * statement, because a statement removing several could deadlock with the worker completing
 * several jobs at once (each locks its rows in its own order).
 */
const REMOVE_JOB_SQL = `SELECT graphile_worker.remove_job($1::text) IS NOT NULL AS removed`;

/**
 * Deletes the outbox rows of settled mails, a batch at a time: only the revision that was sent (a
 * resend may have replaced it meanwhile). Rows are locked in session id order, as PURGE_SQL locks
 * them, so that two statements deleting several rows each cannot deadlock.
 */
const DELETE_SETTLED_SQL = `
  WITH settled AS (
    SELECT o.session_id
      FROM mail_outbox o
      JOIN unnest($1::uuid[], $2::int[]) AS s(session_id, revision) ON o.session_id = s.session_id AND o.revision = s.revision
     ORDER BY o.session_id
       FOR UPDATE OF o
  )
  DELETE FROM mail_outbox o USING settled WHERE o.session_id = settled.session_id`;

/**
 * Moves login-code mails from `mail_outbox` (written in the login's transaction) to graphile-worker.
 * Woken in-process right after a local login or resend commits, and every RELAY_POLL_INTERVAL_MS
 * for rows written through other replicas; batches are taken with SKIP LOCKED, so replicas share
 * the work. Under load one pass follows the other, each handing over what arrived meanwhile: the
 * job queue's NOTIFY (which serializes commits in PostgreSQL) is paid per batch, not per login.
 */
@Injectable()
export class OtpMailRelay {
  private readonly logger = new Logger(OtpMailRelay.name);
  /** A pass that fails (PostgreSQL unreachable) fails again at every poll: one line per 10 s. */
  private readonly failures = new RepeatedWarning((line) => this.logger.warn(line));
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private gathering: NodeJS.Timeout | null = null;
  private settled: { sessionId: string; revision: number }[] = [];
  private settledFlush: Promise<void> | null = null;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** @param pollMs how often to look for rows without being woken */
  start(pollMs = RELAY_POLL_INTERVAL_MS): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), pollMs);
    this.timer.unref();
    this.wake(); // rows left by a previous run
  }

  /**
   * Stops polling, waits for the pass in progress and deletes the rows of the mails settled so
   * far; rows still waiting stay for the next start or replica.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.gathering) clearTimeout(this.gathering);
    this.timer = null;
    this.gathering = null;
    await this.pass;
    await this.flushSettled();
  }

  /** Starts a pass RELAY_GATHER_MS from now, or a new one right after the pass in progress. */
  wake(): void {
    if (this.stopped || this.gathering) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    this.gathering = setTimeout(() => {
      this.gathering = null;
      if (this.stopped) return;
      this.pass = this.drain().finally(() => {
        this.pass = null;
      });
    }, RELAY_GATHER_MS);
  }

  /**
   * Deletes a settled mail's outbox row (its `revision` only: a resend's newer mail stays) within
   * SETTLED_FLUSH_MS, together with the others settled meanwhile. A failed delete is logged; the
   * sweep deletes the row once its code has expired.
   */
  settle(sessionId: string, revision: number): void {
    this.settled.push({ sessionId, revision });
    if (this.settled.length === 1 && !this.settledFlush) {
      setTimeout(() => void this.flushSettled(), SETTLED_FLUSH_MS);
    }
  }

  /** Deletes the rows of the mails settled so far now (see `settle`). */
  async flushSettled(): Promise<void> {
    while (this.settledFlush) await this.settledFlush;
    if (this.settled.length === 0) return;
    const batch = this.settled;
    this.settled = [];
    this.settledFlush = this.dataSource
      .query(DELETE_SETTLED_SQL, [batch.map((m) => m.sessionId), batch.map((m) => m.revision)])
      .then(
        () => undefined,
        (error: unknown) => this.logger.warn(`Mail relay: ${batch.length} settled outbox rows not deleted: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => {
        this.settledFlush = null;
        if (this.settled.length > 0) setTimeout(() => void this.flushSettled(), SETTLED_FLUSH_MS);
      });
    await this.settledFlush;
  }

  /**
   * Hands over one batch. @returns the number of outbox rows handed over
   * @throws when PostgreSQL fails; nothing is handed over then (one statement)
   */
  async relayBatch(limit = RELAY_BATCH): Promise<number> {
    const [row] = await this.dataSource.query<{ handed: number }[]>(RELAY_SQL, [
      limit,
      OTP_MAIL_TASK,
      MAX_ATTEMPTS,
      OTP_MAIL_JOB_KEY_PREFIX,
    ]);
    return row.handed;
  }

  /**
   * Deletes up to `batch` outbox rows whose code expired before `now`, then removes the queued jobs
   * of those already handed over (REMOVE_JOB_SQL; a job a worker holds is only kept from retrying).
   * @returns the number of outbox rows deleted
   */
  async purgeExpired(now: Date, batch: number): Promise<number> {
    const gone = await this.dataSource.query<{ sessionId: string; handedOver: boolean }[]>(PURGE_SQL, [now, batch]);
    for (const { sessionId, handedOver } of gone) {
      if (handedOver) await this.dataSource.query(REMOVE_JOB_SQL, [OTP_MAIL_JOB_KEY_PREFIX + sessionId]);
    }
    return gone.length;
  }

  /** Mails not settled yet: waiting in the outbox, queued, or being sent. */
  async depth(): Promise<number> {
    const [row] = await this.dataSource.query<{ n: number }[]>('SELECT count(*)::int AS n FROM mail_outbox');
    return row.n;
  }

  private async drain(): Promise<void> {
    do {
      this.again = false;
      try {
        while ((await this.relayBatch()) === RELAY_BATCH && !this.stopped);
      } catch (error) {
        // The rows stay in the outbox; the next wake or poll tries again.
        this.failures.report(`Mail relay: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
    } while (this.again && !this.stopped);
  }
}
