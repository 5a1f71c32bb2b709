import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { RepeatedWarning } from '../common/repeated-warning.js';
import { OTP_MAIL_TASK, type OtpMailRef, type OutboxMail } from './otp-mail.job.js';

/** Outbox rows handed over per statement. */
export const RELAY_BATCH = 500;
/**
 * Mails per graphile-worker job at most. A job's mails are sent together, so a job costs its fetch,
 * its outbox read and its completion once for up to this many mails; a pass with more rows queues
 * several jobs, which the runners of several worker processes share. It also bounds the mails a
 * process holds at once (MAIL_CONCURRENCY jobs × this), which a shutdown waits for or hands back.
 */
export const MAILS_PER_JOB = 10;
/** How often a replica looks for rows that no local request woke it for (other replicas', leftovers). */
export const RELAY_POLL_INTERVAL_MS = 1_000;
/**
 * How long a woken relay waits for more logins before its pass, and between one pass and the next
 * (ms): under load one pass, and one NOTIFY, then carries the logins of this window instead of one
 * each, and the passes do not follow each other back to back.
 */
export const RELAY_GATHER_MS = 5;
/** How long settled mails wait to be deleted from the outbox together, in one statement (ms). */
export const SETTLED_FLUSH_MS = 20;
/**
 * graphile-worker attempts per job. A mail whose code has expired is dropped, so this only bounds a
 * job whose codes live for hours: graphile-worker waits exp(min(attempt, 10)) s between tries.
 */
export const MAX_ATTEMPTS = 25;

/**
 * One statement, so one transaction: takes up to $1 rows waiting in the outbox (`waiting`: the rows
 * of the sessions in $5, or the oldest), skipping rows that another replica's relay holds, marks
 * them handed over, and queues them as graphile-worker "batch jobs" (an array payload, up to $2
 * mails each: `[{sessionId, revision}]`) through its documented bulk function
 * `graphile_worker.add_jobs(job_spec[])` ("Adding jobs through SQL"). graphile-worker sends one
 * NOTIFY per call, not per job. The jobs carry no address and no code.
 */
const relaySql = (waiting: string) => `
  WITH batch AS (
    SELECT o.session_id, o.revision, o.queued_at
      FROM mail_outbox o
     WHERE o.handed_over_at IS NULL AND ${waiting}
     ORDER BY o.queued_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
  ), handed AS (
    UPDATE mail_outbox o SET handed_over_at = now() FROM batch b WHERE o.session_id = b.session_id
    RETURNING o.session_id
  ), jobs AS (
    SELECT json_agg(json_build_object('sessionId', n.session_id, 'revision', n.revision) ORDER BY n.i) AS payload
      FROM (SELECT b.*, row_number() OVER (ORDER BY b.queued_at) - 1 AS i FROM batch b) n
     GROUP BY n.i / $2
  ), specs AS (
    SELECT array_agg(ROW($3::text, j.payload, NULL, NULL, $4::integer, NULL, NULL, NULL)::graphile_worker.job_spec) AS specs
      FROM jobs j
  ), queued AS (
    SELECT j.id FROM specs, LATERAL graphile_worker.add_jobs(specs.specs) j WHERE specs.specs IS NOT NULL
  )
  SELECT (SELECT count(*) FROM handed)::int AS handed, (SELECT count(*) FROM queued)::int AS jobs`;

/**
 * The rows of given sessions, found by primary key: what a replica hands over after its own
 * commits. A look for the oldest waiting rows reads the whole outbox (no index names
 * `handed_over_at`, so that the hand-over is a heap-only update: migration 1764921600000), and
 * under load it also steps over the rows handed over moments ago, which PostgreSQL cannot drop
 * while concurrent transactions may still see them (measured with a partial index on the waiting
 * rows: 4.8 ms per pass at 500 logins/s, a quarter of the logins' own statement time).
 */
const RELAY_SESSIONS_SQL = relaySql('o.session_id = ANY($5::uuid[])');
/** The oldest waiting rows, whoever wrote them: the poll (once a second), for other replicas' rows and leftovers. */
const RELAY_OLDEST_SQL = relaySql('true');

/**
 * The mails of a job that are still to send: the outbox rows at the revisions the job names, with
 * the session's locale, and whether the session can still use its code at $3: pending and "still
 * usable" (`session_is_usable`, the one definition; a revoked or confirmed session, or one whose
 * attempts ran out, cannot). A row that is gone (settled, expired) or at another revision (a resend
 * replaced the mail) is not returned.
 */
const MAILS_TO_SEND_SQL = `
  SELECT o.session_id AS "sessionId", o.revision, o.payload, s.locale,
         s.status = 'pending' AND session_is_usable(s.status, s.otp_expires_at, s.otp_attempts_left, s.expires_at, $3) AS "codeUsable"
    FROM unnest($1::uuid[], $2::int[]) AS r(session_id, revision)
    JOIN mail_outbox o ON o.session_id = r.session_id AND o.revision = r.revision
    JOIN sessions s ON s.id = o.session_id`;

/**
 * Deletes up to $2 outbox rows whose code expired before $1, locked in session id order (like
 * DELETE_SETTLED_SQL). A job naming one of them sends nothing for it (MAILS_TO_SEND_SQL).
 */
const PURGE_SQL = `
  WITH expired AS (
    SELECT session_id FROM mail_outbox WHERE expires_at <= $1 ORDER BY session_id LIMIT $2 FOR UPDATE
  ), gone AS (
    DELETE FROM mail_outbox o USING expired e WHERE o.session_id = e.session_id RETURNING 1
  )
  SELECT count(*)::int AS deleted FROM gone`;

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
  ), gone AS (
    DELETE FROM mail_outbox o USING settled WHERE o.session_id = settled.session_id RETURNING o.session_id
  )
  SELECT session_id AS "sessionId" FROM gone`;

/**
 * The relay's statements that run under load (a pass every few ms, a read and a delete per job):
 * constant texts, run as named statements (src/database/named-statements.ts), so that PostgreSQL
 * plans them once per connection (planning the pass took about as long as running it: 0.2 ms).
 */
export const RELAY_STATEMENTS: readonly string[] = [RELAY_SESSIONS_SQL, RELAY_OLDEST_SQL, MAILS_TO_SEND_SQL, DELETE_SETTLED_SQL];

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
  /** Sessions whose rows this replica's requests wrote and the relay has not handed over yet. */
  private local = new Set<string>();
  /** Whether the next pass also looks for the oldest waiting rows (the poll, a start, a failed pass). */
  private scanDue = false;
  private settled: { sessionId: string; revision: number; whenDeleted?: () => void }[] = [];
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

  /**
   * Starts a pass RELAY_GATHER_MS from now, or a new one right after the pass in progress.
   * @param sessionId the session whose row a request of this replica has just committed; without
   *   it, the pass looks for the oldest waiting rows (anyone's)
   */
  wake(sessionId?: string): void {
    if (this.stopped) return;
    if (sessionId === undefined) this.scanDue = true;
    else this.local.add(sessionId);
    if (this.gathering) return;
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
   * @param whenDeleted called once the row is deleted by this statement; not when it was gone
   *   already (the sweep's purge, a resend's newer revision)
   */
  settle(sessionId: string, revision: number, whenDeleted?: () => void): void {
    this.settled.push({ sessionId, revision, whenDeleted });
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
      .query<{ sessionId: string }[]>(DELETE_SETTLED_SQL, [batch.map((m) => m.sessionId), batch.map((m) => m.revision)])
      .then(
        (rows) => {
          const deleted = new Set(rows.map((row) => row.sessionId));
          for (const mail of batch) if (mail.whenDeleted && deleted.has(mail.sessionId)) mail.whenDeleted();
        },
        (error: unknown) => this.logger.warn(`Mail relay: ${batch.length} settled outbox rows not deleted: ${error instanceof Error ? error.message : String(error)}`),
      )
      .finally(() => {
        this.settledFlush = null;
        if (this.settled.length > 0) setTimeout(() => void this.flushSettled(), SETTLED_FLUSH_MS);
      });
    await this.settledFlush;
  }

  /**
   * Hands over one batch: the waiting rows of `sessionIds`, or the oldest waiting rows.
   * @returns the number of outbox rows handed over and of jobs they make
   * @throws when PostgreSQL fails; nothing is handed over then (one statement)
   */
  async relayBatch(limit = RELAY_BATCH, sessionIds?: readonly string[]): Promise<{ handed: number; jobs: number }> {
    const common = [limit, MAILS_PER_JOB, OTP_MAIL_TASK, MAX_ATTEMPTS];
    const [row] = sessionIds
      ? await this.dataSource.query<{ handed: number; jobs: number }[]>(RELAY_SESSIONS_SQL, [...common, sessionIds])
      : await this.dataSource.query<{ handed: number; jobs: number }[]>(RELAY_OLDEST_SQL, common);
    return row;
  }

  /**
   * The mails of `refs` still to send, read from the outbox (see MAILS_TO_SEND_SQL), in no order.
   * @param now the time `codeUsable` is decided at (the worker's clock)
   * @throws when PostgreSQL fails
   */
  mailsToSend(refs: readonly OtpMailRef[], now: Date): Promise<OutboxMail[]> {
    return this.dataSource.query<OutboxMail[]>(MAILS_TO_SEND_SQL, [refs.map((r) => r.sessionId), refs.map((r) => r.revision), now]);
  }

  /**
   * Deletes up to `batch` outbox rows whose code expired before `now` (waiting or handed over: a job
   * naming one then sends nothing for it). @returns the number of outbox rows deleted
   */
  async purgeExpired(now: Date, batch: number): Promise<number> {
    const [row] = await this.dataSource.query<{ deleted: number }[]>(PURGE_SQL, [now, batch]);
    return row.deleted;
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
        while (this.local.size > 0 && !this.stopped) {
          const sessionIds = [...this.local].slice(0, RELAY_BATCH);
          for (const id of sessionIds) this.local.delete(id);
          await this.relayBatch(RELAY_BATCH, sessionIds);
        }
        if (this.scanDue && !this.stopped) {
          this.scanDue = false;
          while ((await this.relayBatch()).handed === RELAY_BATCH && !this.stopped);
        }
        if (this.again && !this.stopped) await sleep(RELAY_GATHER_MS); // more logins arrived meanwhile: gather
      } catch (error) {
        // The rows stay in the outbox (those of the sessions taken too): the next poll's scan finds them.
        this.scanDue = true;
        this.failures.report(`Mail relay: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
    } while (this.again && !this.stopped);
  }
}
