import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import type { DeviceType } from './entities/device.entity.js';
import type { SessionStatus } from './entities/session.entity.js';
import { preparedQuery } from '../database/prepared-query.js';
import type { SendHistory, SendWindow } from './session-rules.js';
import { SESSION_COLUMNS, SESSION_JOINS, SESSION_SQL } from './session-statements.js';

/** A session with its user and device, as the rules and the responses need it. */
export interface SessionRecord {
  id: string;
  status: SessionStatus;
  tokenHash: Buffer;
  otpHash: Buffer | null;
  otpExpiresAt: Date;
  otpAttemptsLeft: number;
  createdAt: Date;
  confirmedAt: Date | null;
  expiresAt: Date | null;
  userId: string;
  email: string;
  deviceId: string;
  deviceType: DeviceType;
  vendorUuid: string | null;
  clientIp: string | null;
  userAgent: string | null;
  lastSeenAt: Date | null;
}

export interface DeviceIdentity {
  email: string;
  type: DeviceType;
  /** Lower-case UUID, or null when absent (one `othr` device per user). */
  vendorUuid: string | null;
}

export interface UserAndDevice {
  userId: string;
  deviceId: string;
  isNewUser: boolean;
  isNewDevice: boolean;
}

export interface StartLoginResult extends UserAndDevice {
  /** False when the send limits refused the send: nothing was inserted. */
  created: boolean;
  /** The sends the limits were decided on (before this one). */
  history: SendHistory;
}

/** SQL condition: the session `s` can still be used at $now (see isReusable in session-rules.ts). */
const LIVE_AT = (now: string) => `(
  (s.status = 'confirmed' AND (s.expires_at IS NULL OR s.expires_at > ${now}))
  OR (s.status = 'pending' AND s.otp_expires_at > ${now} AND s.otp_attempts_left > 0))`;

/** Arbitrary constant naming the expiry sweep among PostgreSQL advisory locks. */
const SWEEP_LOCK_KEY = 4_130_817_204;

/**
 * Storage of users, devices, sessions and OTP sends. Methods that take an `EntityManager` run
 * inside the caller's transaction; the locks they take are noted.
 */
@Injectable()
export class SessionsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Runs `work` in a transaction at PostgreSQL's default isolation, READ COMMITTED, which the
   * locking in this class relies on (each statement sees rows committed before it started, so a
   * statement after a lock wait sees the winner's rows). Not named explicitly: TypeORM would spend
   * a round trip on `SET TRANSACTION ISOLATION LEVEL`.
   */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  /** The session whose token hashes to `tokenHash`, if it belongs to exactly this device. */
  async findByTokenHashOnDevice(tokenHash: Buffer, device: DeviceIdentity): Promise<SessionRecord | null> {
    const { rows } = await preparedQuery<SessionRecord>(this.dataSource, SESSION_SQL.findByTokenHashOnDevice, [
      tokenHash,
      device.email,
      device.type,
      device.vendorUuid,
    ]);
    return rows[0] ?? null;
  }

  /**
   * POST /sessions for a new session, in one statement (`start_login`, one implicit transaction):
   * finds or creates the user and the device (the user's row stays locked, so concurrent logins of
   * one address count each other's sends), reads the send history, and, when `window` allows a send,
   * inserts the pending session, its send record and the mail job; when it refuses, a user or device
   * created by this call is deleted again. `session.userId` and `session.deviceId` are the ids to
   * use if the user or device is new.
   * @returns the actual ids, the history, and whether the session was created (false: limited)
   */
  async startLogin(
    session: SessionRecord,
    window: SendWindow,
    mail: { queue: string; data: object },
  ): Promise<StartLoginResult> {
    const { rows } = await preparedQuery<UserAndDevice & SendHistory & { created: boolean }>(
      this.dataSource,
      SESSION_SQL.startLogin,
      [
        session.userId, session.email, session.deviceId, session.deviceType, session.vendorUuid, session.createdAt,
        session.id, session.tokenHash, session.otpHash, session.otpExpiresAt, session.otpAttemptsLeft,
        session.clientIp, session.userAgent,
        window.historySince, window.hourAgo, window.cooldownSince, window.maxSendsPerHour,
        mail.queue, mail.data,
      ],
    );
    const { created, lastDeviceSendAt, sendsInLastHour, oldestSendInLastHourAt, ...ids } = rows[0];
    return { ...ids, created, history: { lastDeviceSendAt, sendsInLastHour, oldestSendInLastHourAt } };
  }

  /** OTP sends of the user since `since` that the send limits need. */
  async sendHistory(
    manager: EntityManager,
    userId: string,
    deviceId: string,
    hourAgo: Date,
    since: Date,
  ): Promise<SendHistory> {
    const { rows } = await preparedQuery<SendHistory>(manager, SESSION_SQL.sendHistory, [userId, deviceId, hourAgo, since]);
    return rows[0];
  }

  /**
   * Locks the session's device (`FOR NO KEY UPDATE`), then the session row (`FOR UPDATE`), and
   * returns the session. Confirm and resend both lock in this order, so confirms of two sessions of
   * one device queue up instead of deadlocking when each revokes the other.
   * @returns null when no such session exists
   */
  async lockDeviceAndSession(manager: EntityManager, sessionId: string): Promise<SessionRecord | null> {
    const { rows: devices } = await preparedQuery<{ id: string }>(manager, SESSION_SQL.lockDevice, [sessionId]);
    if (devices.length === 0) return null;
    const { rows } = await preparedQuery<SessionRecord>(manager, SESSION_SQL.lockSession, [sessionId]);
    return rows[0] ?? null;
  }

  /** Stores the attempts left after a wrong code; the last one ends the session. */
  async recordWrongCode(manager: EntityManager, sessionId: string, attemptsLeft: number, now: Date): Promise<void> {
    await preparedQuery(manager,
      `UPDATE sessions
          SET otp_attempts_left = $2::smallint,
              status = CASE WHEN $2::smallint = 0 THEN 'expired' ELSE status END,
              otp_hash = CASE WHEN $2::smallint = 0 THEN NULL ELSE otp_hash END,
              ended_at = CASE WHEN $2::smallint = 0 THEN $3::timestamptz ELSE ended_at END
        WHERE id = $1`,
      [sessionId, attemptsLeft, now],
    );
  }

  async markExpired(manager: EntityManager, sessionId: string, now: Date): Promise<void> {
    await preparedQuery(manager, `UPDATE sessions SET status = 'expired', otp_hash = NULL, ended_at = $2 WHERE id = $1`, [
      sessionId,
      now,
    ]);
  }

  /** Revokes every other pending or confirmed session of the device (one live session per device). */
  async revokeOthersOnDevice(manager: EntityManager, deviceId: string, keepSessionId: string, now: Date): Promise<number> {
    const { rowCount: count } = await preparedQuery(manager, SESSION_SQL.revokeOthersOnDevice, [deviceId, keepSessionId, now]);
    return count;
  }

  /** Confirms a pending session; its OTP hash is erased so the code can never be used again. */
  async markConfirmed(manager: EntityManager, sessionId: string, now: Date, expiresAt: Date | null): Promise<void> {
    await preparedQuery(manager, SESSION_SQL.markConfirmed, [sessionId, now, expiresAt]);
  }
  /** The session whose token hashes to `tokenHash`, in any state. */
  async findByTokenHash(tokenHash: Buffer): Promise<SessionRecord | null> {
    const { rows } = await preparedQuery<SessionRecord>(this.dataSource, SESSION_SQL.findByTokenHash, [tokenHash]);
    return rows[0] ?? null;
  }

  async findById(sessionId: string): Promise<SessionRecord | null> {
    const { rows } = await preparedQuery<SessionRecord>(this.dataSource,
      `SELECT ${SESSION_COLUMNS} FROM ${SESSION_JOINS} WHERE s.id = $1`,
      [sessionId],
    );
    return rows[0] ?? null;
  }

  /** Sets `last_seen_at` unless another request already did since `staleBefore`. */
  async touchLastSeen(sessionId: string, now: Date, staleBefore: Date): Promise<void> {
    await preparedQuery(this.dataSource,
      `UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND (last_seen_at IS NULL OR last_seen_at <= $3)`,
      [sessionId, now, staleBefore],
    );
  }

  /** The user's pending and confirmed sessions that can still be used at `now`, newest first. */
  async listLiveForUser(userId: string, now: Date): Promise<SessionRecord[]> {
    const { rows } = await preparedQuery<SessionRecord>(
      this.dataSource,
      `SELECT ${SESSION_COLUMNS} FROM ${SESSION_JOINS}
        WHERE s.user_id = $1 AND s.status IN ('pending', 'confirmed') AND ${LIVE_AT('$2')}
        ORDER BY s.created_at DESC, s.id`,
      [userId, now],
    );
    return rows;
  }

  /**
   * Revokes a session that can still be used at `now`. A session already ended is left as it is,
   * and one that ended by time but is not marked yet (code or `expires_at` past, before the sweep)
   * is marked `expired`, not `revoked`. @returns whether it was revoked now
   */
  async revoke(sessionId: string, now: Date): Promise<boolean> {
    const { rows } = await preparedQuery<{ status: string }>(this.dataSource,
      `UPDATE sessions s SET status = CASE WHEN ${LIVE_AT('$2')} THEN 'revoked' ELSE 'expired' END,
              otp_hash = NULL, ended_at = $2
        WHERE s.id = $1 AND s.status IN ('pending', 'confirmed')
        RETURNING s.status`,
      [sessionId, now],
    );
    return rows[0]?.status === 'revoked';
  }

  /**
   * Locks the user owning the session (`FOR NO KEY UPDATE`, the lock POST /sessions takes through
   * its upsert), so a resend and a new login of one address count their sends one after the other.
   */
  async lockUserOfSession(manager: EntityManager, sessionId: string): Promise<void> {
    await preparedQuery(manager,
      `SELECT id FROM users WHERE id = (SELECT user_id FROM sessions WHERE id = $1) FOR NO KEY UPDATE`,
      [sessionId],
    );
  }

  /** Gives a pending session a new code (the old one stops working, attempts are reset) and records the send. */
  async replaceOtp(
    manager: EntityManager,
    session: { id: string; userId: string; deviceId: string },
    otp: { hash: Buffer; expiresAt: Date; attempts: number },
    now: Date,
  ): Promise<void> {
    await preparedQuery(manager,
      `UPDATE sessions SET otp_hash = $2, otp_expires_at = $3, otp_attempts_left = $4 WHERE id = $1`,
      [session.id, otp.hash, otp.expiresAt, otp.attempts],
    );
    await preparedQuery(manager,
      `INSERT INTO otp_sends (user_id, device_id, session_id, sent_at) VALUES ($1, $2, $3, $4)`,
      [session.userId, session.deviceId, session.id, now],
    );
  }

  /**
   * Runs `work` while holding the sweep's advisory lock, on one connection; returns null at once
   * when another replica holds it (no double work).
   */
  async withSweepLock<T>(work: (manager: EntityManager) => Promise<T>): Promise<T | null> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      const [{ locked }] = await runner.query(`SELECT pg_try_advisory_lock($1) AS locked`, [SWEEP_LOCK_KEY]);
      if (!locked) return null;
      try {
        return await work(runner.manager);
      } finally {
        await runner.query(`SELECT pg_advisory_unlock($1)`, [SWEEP_LOCK_KEY]);
      }
    } finally {
      await runner.release();
    }
  }

  /** Marks pending sessions whose code expired, and confirmed ones past `expires_at`, as expired. */
  async expireDue(manager: EntityManager, now: Date, batch: number): Promise<number> {
    const [, count]: [unknown, number] = await manager.query(
      `UPDATE sessions SET status = 'expired', otp_hash = NULL, ended_at = $1
        WHERE id IN (
          (SELECT id FROM sessions WHERE status = 'pending' AND otp_expires_at <= $1 LIMIT $2)
          UNION ALL
          (SELECT id FROM sessions WHERE status = 'confirmed' AND expires_at <= $1 LIMIT $2))`,
      [now, batch],
    );
    return count;
  }

  /** Deletes expired and revoked sessions that ended before `cutoff`. */
  async deleteEndedBefore(manager: EntityManager, cutoff: Date, batch: number): Promise<number> {
    const [, count]: [unknown, number] = await manager.query(
      `DELETE FROM sessions WHERE id IN (
         SELECT id FROM sessions WHERE status IN ('expired', 'revoked') AND ended_at < $1 LIMIT $2)`,
      [cutoff, batch],
    );
    return count;
  }

  /** Deletes OTP send records older than any send limit looks back. */
  async deleteSendsBefore(manager: EntityManager, cutoff: Date, batch: number): Promise<number> {
    const [, count]: [unknown, number] = await manager.query(
      `DELETE FROM otp_sends WHERE id IN (SELECT id FROM otp_sends WHERE sent_at < $1 LIMIT $2)`,
      [cutoff, batch],
    );
    return count;
  }
}
