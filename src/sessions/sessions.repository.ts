import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { Brackets, type DataSource, type EntityManager, type Repository } from 'typeorm';
import { Device, type DeviceType } from './entities/device.entity.js';
import { OtpSend } from './entities/otp-send.entity.js';
import { Session, type SessionStatus } from './entities/session.entity.js';
import { User } from './entities/user.entity.js';
import type { SendLimits, SendRefusal } from './session-rules.js';
import { SESSION_SQL } from './session-statements.js';

export interface StartLoginResult {
  /** Whether this call created the user (meaningful when the session was created). */
  isNewUser: boolean;
  /** Whether this call created the device (meaningful when the session was created). */
  isNewDevice: boolean;
  /** Null when the session was created; otherwise why the send limits refused it (nothing was kept). */
  refusal: SendRefusal | null;
}

/** What `confirm_session` did (see its migration). */
export type ConfirmOutcome =
  | 'not_found'
  | 'unauthorized'
  | 'confirmed'
  | 'already_confirmed'
  | 'otp_invalid'
  | 'otp_expired'
  | 'confirmed_session_expired'
  | 'otp_attempts_exceeded'
  | 'session_expired'
  | 'session_revoked';

export type ConfirmResult =
  | { outcome: 'not_found' | 'unauthorized' }
  | { outcome: Exclude<ConfirmOutcome, 'not_found' | 'unauthorized'>; revokedOthers: number; session: Session };

/**
 * SQL condition: the session (alias `s`) can still be used at `now`: `session_is_usable` (migration
 * 1764835200000), the one definition of the rule.
 */
const usableAt = (now: string, s = 's') =>
  `session_is_usable(${s}.status, ${s}.otp_expires_at, ${s}.otp_attempts_left, ${s}.expires_at, ${now})`;

/** A row of `send_otp` / `start_login`: the refusal reason and Retry-After seconds, both null when sent. */
interface SendOutcome {
  refusal: SendRefusal['reason'] | null;
  retryAfter: number | null;
}

/** A row of `start_login`: the user's and device's actual ids, whether it created them, and the send outcome. */
interface StartLoginRow extends SendOutcome {
  userId: string;
  deviceId: string;
  isNewUser: boolean;
  isNewDevice: boolean;
}

function refusalOf(outcome: SendOutcome): SendRefusal | null {
  return outcome.refusal ? { reason: outcome.refusal, retryAfter: outcome.retryAfter ?? 1 } : null;
}

/** A session (with its user and device) and whether it can still be used at the time asked (`session_is_usable` in SQL). */
export interface SessionAt {
  session: Session;
  usable: boolean;
}

/**
 * A row of the hot-path statements (SESSION_COLUMNS, and `confirm_session`'s table): the session's
 * columns under its entity's property names, and its user's and device's columns.
 */
type SessionRow = Pick<
  Session,
  | 'id' | 'status' | 'tokenHash' | 'otpHash' | 'otpExpiresAt' | 'otpAttemptsLeft' | 'createdAt' | 'confirmedAt'
  | 'expiresAt' | 'clientIp' | 'userAgent' | 'lastSeenAt' | 'userId' | 'deviceId'
> & { email: User['email']; deviceType: Device['type']; vendorUuid: Device['vendorUuid'] };

/** Arbitrary constant naming the expiry sweep among PostgreSQL advisory locks. */
const SWEEP_LOCK_KEY = 4_130_817_204;

/**
 * Storage of users, devices, sessions and OTP sends. Methods that take an `EntityManager` run
 * inside the caller's transaction; the locks they take are noted. The hot paths (login, token check,
 * confirm) run constant SQL (session-statements.ts) through TypeORM's `query()`, prepared once per
 * connection; the cold ones use the Repository and QueryBuilder.
 */
@Injectable()
export class SessionsRepository {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRepository(Session) private readonly sessions: Repository<Session>,
  ) {}

  /**
   * Runs `work` in a transaction at PostgreSQL's default isolation, READ COMMITTED, which the
   * locking in this class relies on (each statement sees rows committed before it started, so a
   * statement after a lock wait sees the winner's rows). Not named explicitly: TypeORM would spend
   * a round trip on `SET TRANSACTION ISOLATION LEVEL`.
   */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  /**
   * The session whose token hashes to `tokenHash`, if it belongs to exactly this device (the user
   * with this normalized `email`, the device's `type` and lower-case `vendorUuid`, null counting as
   * one value), and whether it is usable at `now`. The session is as `sessionOf` builds it.
   */
  async findByTokenHashOnDevice(
    tokenHash: Buffer,
    email: string,
    device: Pick<Device, 'type' | 'vendorUuid'>,
    now: Date,
  ): Promise<SessionAt | null> {
    const rows: (SessionRow & { usable: boolean })[] = await this.dataSource.query(SESSION_SQL.findByTokenHashOnDevice, [
      tokenHash,
      email,
      device.type,
      device.vendorUuid,
      now,
    ]);
    return rows[0] ? { session: sessionOf(rows[0]), usable: rows[0].usable } : null;
  }

  /**
   * POST /sessions for a new session, in one statement (`start_login`, one implicit transaction):
   * finds or creates the user and the device (the user's row stays locked, so concurrent logins of
   * one address count each other's sends), inserts the pending session, and lets `send_otp` decide
   * the send limits, record the send and queue the mail in `mail_outbox`; when the limits refuse,
   * nothing of the call is kept. `session` is a new pending Session with its `user` and `device`,
   * whose ids are used if the user or device is new; like TypeORM's `save`, a created session gets
   * the ids of an existing user or device set on it (`userId`, `user.id`, `deviceId`, `device.id`,
   * `device.userId`). `session.locale` (BCP 47, RFC 5646) is stored for its mails.
   * @param mail the outbox payload (OtpMailQueue.payloadFor)
   * @returns whether the user and device are new, and the refusal (null: created)
   */
  async startLogin(session: Session, limits: SendLimits, mail: object): Promise<StartLoginResult> {
    const { user, device } = session;
    const rows: StartLoginRow[] = await this.dataSource.query(
      SESSION_SQL.startLogin,
      [
        user.id, user.email, device.id, device.type, device.vendorUuid, session.createdAt,
        session.id, session.tokenHash, session.otpHash, session.otpExpiresAt, session.otpAttemptsLeft,
        session.clientIp, session.userAgent, session.locale,
        limits.resendCooldown, limits.maxSendsPerHour, mail,
      ],
    );
    const { userId, deviceId, isNewUser, isNewDevice, refusal, retryAfter } = rows[0];
    if (refusal) return { isNewUser, isNewDevice, refusal: refusalOf({ refusal, retryAfter }) };
    session.userId = user.id = device.userId = userId;
    session.deviceId = device.id = deviceId;
    return { isNewUser, isNewDevice, refusal: null };
  }

  /**
   * The send limits for one more code to the session's device (`send_otp`): locks the user, decides,
   * and when allowed records the send and queues the mail (replacing a mail of the session not
   * handed over yet), in the caller's transaction.
   * @param mail the outbox payload (OtpMailQueue.payloadFor); `expiresAt` is the new code's expiry
   * @returns null when sent, else the refusal
   */
  async sendOtp(
    manager: EntityManager,
    session: { id: string; userId: string; deviceId: string },
    now: Date,
    limits: SendLimits,
    mail: object,
    expiresAt: Date,
  ): Promise<SendRefusal | null> {
    const rows: SendOutcome[] = await manager.query(SESSION_SQL.sendOtp, [
      session.userId, session.deviceId, session.id, now, limits.resendCooldown, limits.maxSendsPerHour, mail, expiresAt,
    ]);
    return refusalOf(rows[0]);
  }

  /**
   * Locks the session's device (`FOR NO KEY UPDATE`), then the session row (`FOR UPDATE`), and
   * returns the session and whether it is usable at `now`. Resend locks in this order, as
   * `confirm_session` does, so that two requests on sessions of one device queue up instead of
   * deadlocking.
   * @returns null when no such session exists
   */
  async lockDeviceAndSession(manager: EntityManager, sessionId: string, now: Date): Promise<SessionAt | null> {
    const device = await manager
      .createQueryBuilder(Device, 'd')
      .select('d.id')
      .where((qb) => `d.id = ${qb.subQuery().select('s.device_id').from(Session, 's').where('s.id = :sessionId').getQuery()}`)
      .setParameter('sessionId', sessionId)
      .setLock('for_no_key_update')
      .getOne();
    if (!device) return null;
    const { entities, raw } = await manager
      .createQueryBuilder(Session, 's')
      .innerJoinAndSelect('s.user', 'u')
      .innerJoinAndSelect('s.device', 'd')
      .addSelect(usableAt(':now'), 'usable')
      .where('s.id = :sessionId', { sessionId })
      .setParameter('now', now)
      .setLock('pessimistic_write', undefined, ['s'])
      .getRawAndEntities<{ usable: boolean }>();
    return entities[0] ? { session: entities[0], usable: raw[0].usable } : null;
  }

  /**
   * PATCH /sessions/{uuid} in one statement (`confirm_session`, migration 1764662400000): locks the
   * device and the session, checks the token, applies SPEC's state machine and writes its outcome.
   * `otpHash` is the HMAC of the submitted code for this session (hashOtp); `expiresAt` the expiry a
   * confirm sets per device type (confirmedExpiry).
   * @returns what happened, with the session as it is afterwards (as `sessionOf` builds it; absent
   *   for `not_found` and `unauthorized`) and how many other sessions of the device a confirm revoked
   */
  async confirm(
    sessionId: string,
    tokenHash: Buffer,
    otpHash: Buffer,
    now: Date,
    expiresAt: Record<DeviceType, Date | null>,
  ): Promise<ConfirmResult> {
    const [row]: (SessionRow & { outcome: ConfirmOutcome; revokedOthers: number })[] = await this.dataSource.query(
      SESSION_SQL.confirmSession,
      [sessionId, tokenHash, otpHash, now, expiresAt.othr, expiresAt.mobi],
    );
    const { outcome, revokedOthers } = row;
    if (outcome === 'not_found' || outcome === 'unauthorized') return { outcome };
    return { outcome, revokedOthers, session: sessionOf(row) };
  }

  /** The session whose token hashes to `tokenHash`, in any state, as `sessionOf` builds it. */
  async findByTokenHash(tokenHash: Buffer): Promise<Session | null> {
    const rows: SessionRow[] = await this.dataSource.query(SESSION_SQL.findByTokenHash, [tokenHash]);
    return rows[0] ? sessionOf(rows[0]) : null;
  }

  /** The session with this id, with its user and device, in any state. */
  findById(sessionId: string): Promise<Session | null> {
    return this.sessions.findOne({ where: { id: sessionId }, relations: { user: true, device: true } });
  }

  /** Sets `last_seen_at` unless another request already did since `staleBefore`. */
  async touchLastSeen(sessionId: string, now: Date, staleBefore: Date): Promise<void> {
    await this.sessions
      .createQueryBuilder()
      .update()
      .set({ lastSeenAt: now })
      .where('id = :sessionId', { sessionId })
      .andWhere(new Brackets((qb) => qb.where('last_seen_at IS NULL').orWhere('last_seen_at <= :staleBefore', { staleBefore })))
      .execute();
  }

  /** The user's pending and confirmed sessions that can still be used at `now`, newest first, with their user and device. */
  listLiveForUser(userId: string, now: Date): Promise<Session[]> {
    return this.sessions
      .createQueryBuilder('s')
      .innerJoinAndSelect('s.user', 'u')
      .innerJoinAndSelect('s.device', 'd')
      .where('s.user_id = :userId', { userId })
      .andWhere(`s.status IN ('pending', 'confirmed') AND ${usableAt(':now')}`, { now })
      .orderBy('s.created_at', 'DESC')
      .addOrderBy('s.id')
      .getMany();
  }

  /**
   * Revokes a session that can still be used at `now`. A session already ended is left as it is,
   * and one that ended by time but is not marked yet (code or `expires_at` past, before the sweep)
   * is marked `expired`, not `revoked`. @returns whether it was revoked now
   */
  async revoke(sessionId: string, now: Date): Promise<boolean> {
    // TypeORM's UPDATE names the table, without an alias.
    const { raw } = await this.sessions
      .createQueryBuilder()
      .update()
      .set({ status: () => `CASE WHEN ${usableAt(':now', 'sessions')} THEN 'revoked' ELSE 'expired' END`, otpHash: null, endedAt: now })
      .where('id = :sessionId', { sessionId })
      .andWhere(`status IN ('pending', 'confirmed')`)
      .setParameter('now', now)
      .returning('status')
      .execute();
    return (raw as { status: SessionStatus }[])[0]?.status === 'revoked';
  }

  /**
   * Locks the user owning the session (`FOR NO KEY UPDATE`, the lock POST /sessions takes through
   * its upsert), so a resend and a new login of one address count their sends one after the other.
   */
  async lockUserOfSession(manager: EntityManager, sessionId: string): Promise<void> {
    await manager
      .createQueryBuilder(User, 'u')
      .select('u.id')
      .where((qb) => `u.id = ${qb.subQuery().select('s.user_id').from(Session, 's').where('s.id = :sessionId').getQuery()}`)
      .setParameter('sessionId', sessionId)
      .setLock('for_no_key_update')
      .getOne();
  }

  /** Gives a pending session a new code (the old one stops working, attempts are reset); `sendOtp` recorded the send. */
  async replaceOtp(
    manager: EntityManager,
    sessionId: string,
    otp: Pick<Session, 'otpHash' | 'otpExpiresAt' | 'otpAttemptsLeft'>,
  ): Promise<void> {
    await manager.update(Session, { id: sessionId }, otp);
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
    let count = 0;
    for (const [status, deadline] of [['pending', 'otp_expires_at'], ['confirmed', 'expires_at']] as const) {
      const { affected } = await manager
        .createQueryBuilder()
        .update(Session)
        .set({ status: 'expired', otpHash: null, endedAt: now })
        .where(`id IN (${manager.createQueryBuilder(Session, 'x').select('x.id')
          .where(`x.status = '${status}' AND x.${deadline} <= :now`).limit(batch).getQuery()})`)
        .setParameter('now', now)
        .execute();
      count += affected ?? 0;
    }
    return count;
  }

  /** Deletes expired and revoked sessions that ended before `cutoff`. */
  async deleteEndedBefore(manager: EntityManager, cutoff: Date, batch: number): Promise<number> {
    const { affected } = await manager
      .createQueryBuilder()
      .delete()
      .from(Session)
      .where(`id IN (${manager.createQueryBuilder(Session, 'x').select('x.id')
        .where(`x.status IN ('expired', 'revoked') AND x.ended_at < :cutoff`).limit(batch).getQuery()})`)
      .setParameter('cutoff', cutoff)
      .execute();
    return affected ?? 0;
  }

  /** Deletes OTP send records older than any send limit looks back. */
  async deleteSendsBefore(manager: EntityManager, cutoff: Date, batch: number): Promise<number> {
    const { affected } = await manager
      .createQueryBuilder()
      .delete()
      .from(OtpSend)
      .where(`id IN (${manager.createQueryBuilder(OtpSend, 'x').select('x.id').where('x.sent_at < :cutoff').limit(batch).getQuery()})`)
      .setParameter('cutoff', cutoff)
      .execute();
    return affected ?? 0;
  }
}

/**
 * A hot-path row as a Session with its User and Device, built with the entity classes (a few
 * property writes; TypeORM's hydration of the same row through a QueryBuilder costs several times
 * more). It carries what the row has: not the session's `endedAt` and `locale`, nor the user's and
 * device's `createdAt`.
 */
function sessionOf(row: SessionRow): Session {
  const user = new User();
  user.id = row.userId;
  user.email = row.email;
  const device = new Device();
  device.id = row.deviceId;
  device.userId = row.userId;
  device.type = row.deviceType;
  device.vendorUuid = row.vendorUuid;
  const session = new Session();
  session.id = row.id;
  session.userId = row.userId;
  session.user = user;
  session.deviceId = row.deviceId;
  session.device = device;
  session.status = row.status;
  session.tokenHash = row.tokenHash;
  session.otpHash = row.otpHash;
  session.otpExpiresAt = row.otpExpiresAt;
  session.otpAttemptsLeft = row.otpAttemptsLeft;
  session.createdAt = row.createdAt;
  session.confirmedAt = row.confirmedAt;
  session.expiresAt = row.expiresAt;
  session.clientIp = row.clientIp;
  session.userAgent = row.userAgent;
  session.lastSeenAt = row.lastSeenAt;
  return session;
}
