import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Session } from '../src/sessions/entities/session.entity.js';
import type { SendLimits, SendRefusal } from '../src/sessions/session-rules.js';
import { createMigratedTestDatabase, type TestDatabase } from './support/test-database.js';

/**
 * The rules that live in PostgreSQL, once, because they must be exact under concurrency
 * (migration 1764835200000): `send_otp` (the send limits of a new login and of a resend) and
 * `session_is_usable` (reuse, resend, list, revoke). Called directly, without HTTP: each case
 * writes a send history, asks, and rolls back.
 */

const NOW = new Date('2026-01-01T12:00:00.000Z');
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

const LIMITS: SendLimits = { resendCooldown: 60, maxSendsPerHour: 10 };

/** A send history as the limits see it: built from otp_sends rows before `send_otp` is asked. */
interface SendHistory {
  /** Latest send to this device, or null. */
  lastDeviceSendAt: Date | null;
  /** Sends to this email address (all devices) in the hour before NOW, this device's included. */
  sendsInLastHour: number;
  /** Oldest of those sends. */
  oldestSendInLastHourAt: Date | null;
}

function history(overrides: Partial<SendHistory> = {}): SendHistory {
  return { lastDeviceSendAt: null, sendsInLastHour: 0, oldestSendInLastHourAt: null, ...overrides };
}

/** The columns of a session that `session_is_usable` looks at. */
type SessionState = Pick<Session, 'status' | 'otpExpiresAt' | 'otpAttemptsLeft' | 'expiresAt'>;

function session(overrides: Partial<SessionState> = {}): SessionState {
  return { status: 'pending', otpExpiresAt: at(5 * MINUTE), otpAttemptsLeft: 5, expiresAt: null, ...overrides };
}

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createMigratedTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/**
 * Writes `h` as otp_sends rows of one user (this device's latest send, the rest on another device
 * of the user), asks `send_otp` for one more send to this device at NOW, and rolls everything back.
 * @returns the refusal, or null when the send was allowed (then the send and the outbox row exist)
 */
async function decide(h: SendHistory, limits: SendLimits): Promise<SendRefusal | null> {
  const [user, device, other, session, otherSession] = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()];
  await client.query('BEGIN');
  try {
    await client.query(`INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)`, [user, `${user}@example.com`, at(-2 * HOUR)]);
    await client.query(
      `INSERT INTO devices (id, user_id, type, vendor_uuid, created_at) VALUES ($1, $3, 'othr', NULL, $4), ($2, $3, 'mobi', $2, $4)`,
      [device, other, user, at(-2 * HOUR)],
    );
    await client.query(
      `INSERT INTO sessions (id, user_id, device_id, status, token_hash, otp_hash, otp_expires_at, otp_attempts_left, created_at)
       VALUES ($1, $3, $4, 'pending', $6, $6, $7, 5, $8), ($2, $3, $5, 'pending', $9, $9, $7, 5, $8)`,
      [session, otherSession, user, device, other, Buffer.from(session), at(5 * MINUTE), at(-2 * HOUR), Buffer.from(otherSession)],
    );
    const sends: [string, string, Date][] = [];
    const deviceInHour = h.lastDeviceSendAt !== null && h.lastDeviceSendAt > at(-HOUR);
    if (h.lastDeviceSendAt) sends.push([device, session, h.lastDeviceSendAt]);
    const others = h.sendsInLastHour - (deviceInHour ? 1 : 0);
    for (let i = 0; i < others; i++) sends.push([other, otherSession, new Date(h.oldestSendInLastHourAt!.getTime() + i)]);
    for (const [d, s, sentAt] of sends) {
      await client.query(`INSERT INTO otp_sends (user_id, device_id, session_id, sent_at) VALUES ($1, $2, $3, $4)`, [user, d, s, sentAt]);
    }
    const { rows } = await client.query<{ refusal: SendRefusal['reason'] | null; retryAfter: number | null }>(
      `SELECT * FROM send_otp($1, $2, $3, $4, $5, $6, $7, $8)`,
      [user, device, session, NOW, limits.resendCooldown, limits.maxSendsPerHour, { to: 'x' }, at(5 * MINUTE)],
    );
    const { rows: written } = await client.query<{ sends: number; outbox: number }>(
      `SELECT (SELECT count(*) FROM otp_sends WHERE session_id = $1 AND sent_at = $2)::int AS sends,
              (SELECT count(*) FROM mail_outbox WHERE session_id = $1)::int AS outbox`,
      [session, NOW],
    );
    const refusal = rows[0].refusal ? { reason: rows[0].refusal, retryAfter: rows[0].retryAfter! } : null;
    // An allowed send is recorded and its mail queued; a refused one writes nothing.
    const seeded = h.lastDeviceSendAt?.getTime() === NOW.getTime() ? 1 : 0;
    expect(written[0]).toEqual(refusal ? { sends: seeded, outbox: 0 } : { sends: seeded + 1, outbox: 1 });
    return refusal;
  } finally {
    await client.query('ROLLBACK');
  }
}

async function usable(s: SessionState): Promise<boolean> {
  const { rows } = await client.query<{ usable: boolean }>(`SELECT session_is_usable($1, $2, $3, $4, $5) AS usable`, [
    s.status,
    s.otpExpiresAt,
    s.otpAttemptsLeft,
    s.expiresAt,
    NOW,
  ]);
  return rows[0].usable;
}

describe('send_otp: the send limits', () => {
  it('allows a first send (no history)', async () => {
    expect(await decide(history(), LIMITS)).toBeNull();
  });

  describe('per-device cooldown', () => {
    it('allows a send exactly when the cooldown ends', async () => {
      expect(await decide(history({ lastDeviceSendAt: at(-60 * SECOND) }), LIMITS)).toBeNull();
    });

    it('allows a send after the cooldown', async () => {
      expect(await decide(history({ lastDeviceSendAt: at(-61 * SECOND) }), LIMITS)).toBeNull();
    });

    it('refuses 1 ms before the cooldown ends, with Retry-After 1 (rounded up, never 0)', async () => {
      expect(await decide(history({ lastDeviceSendAt: at(-60 * SECOND + 1) }), LIMITS)).toEqual({
        reason: 'cooldown',
        retryAfter: 1,
      });
    });

    it('refuses right after a send with Retry-After equal to the whole cooldown', async () => {
      expect(await decide(history({ lastDeviceSendAt: NOW }), LIMITS)).toEqual({
        reason: 'cooldown',
        retryAfter: 60,
      });
    });

    it('rounds a fractional remainder up', async () => {
      // 59.5 s left → 60; 30.001 s left → 31; exactly 30 s left → 30.
      expect((await decide(history({ lastDeviceSendAt: at(-500) }), LIMITS))?.retryAfter).toBe(60);
      expect((await decide(history({ lastDeviceSendAt: at(-29_999) }), LIMITS))?.retryAfter).toBe(31);
      expect((await decide(history({ lastDeviceSendAt: at(-30 * SECOND) }), LIMITS))?.retryAfter).toBe(30);
    });

    it('uses the configured cooldown length', async () => {
      const limits = { ...LIMITS, resendCooldown: 5 };
      expect(await decide(history({ lastDeviceSendAt: at(-5 * SECOND) }), limits)).toBeNull();
      expect(await decide(history({ lastDeviceSendAt: at(-2 * SECOND) }), limits)).toEqual({
        reason: 'cooldown',
        retryAfter: 3,
      });
    });

    it('is disabled by a cooldown of 0, even for a send this very instant', async () => {
      const limits = { ...LIMITS, resendCooldown: 0 };
      expect(await decide(history({ lastDeviceSendAt: NOW }), limits)).toBeNull();
    });

    it('a cooldown of 0 does not disable the hourly cap', async () => {
      const limits = { ...LIMITS, resendCooldown: 0 };
      const h = history({ lastDeviceSendAt: NOW, sendsInLastHour: 10, oldestSendInLastHourAt: at(-10 * MINUTE) });
      expect(await decide(h, limits)).toEqual({ reason: 'hourly_cap', retryAfter: 50 * 60 });
    });
  });

  describe('hourly cap per email address', () => {
    it('allows the send that reaches the cap (cap - 1 already sent)', async () => {
      const h = history({ sendsInLastHour: 9, oldestSendInLastHourAt: at(-30 * MINUTE) });
      expect(await decide(h, LIMITS)).toBeNull();
    });

    it('refuses once the cap is reached, Retry-After counted from the oldest send + 1 h', async () => {
      const h = history({ sendsInLastHour: 10, oldestSendInLastHourAt: at(-30 * MINUTE) });
      expect(await decide(h, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 30 * 60 });
    });

    it('refuses above the cap too', async () => {
      const h = history({ sendsInLastHour: 25, oldestSendInLastHourAt: at(-59 * MINUTE) });
      expect(await decide(h, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 60 });
    });

    it('rounds the hourly Retry-After up', async () => {
      // Oldest send 30 min 0.2 s ago: 1799.8 s left → 1800.
      const h = history({ sendsInLastHour: 10, oldestSendInLastHourAt: at(-30 * MINUTE - 200) });
      expect((await decide(h, LIMITS))?.retryAfter).toBe(1800);
    });

    it('never answers a Retry-After below 1', async () => {
      // The oldest send leaves the window 1 ms from now: still at least 1 s.
      const leaving = history({ sendsInLastHour: 10, oldestSendInLastHourAt: at(-HOUR + 1) });
      expect(await decide(leaving, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 1 });
      // A send exactly one hour old has left the window (now - 1 h, now]: 9 remain, one more is allowed.
      const left = history({ sendsInLastHour: 10, oldestSendInLastHourAt: at(-HOUR) });
      expect(await decide(left, LIMITS)).toBeNull();
    });

    it('uses the configured cap', async () => {
      const limits = { ...LIMITS, maxSendsPerHour: 1 };
      expect(await decide(history(), limits)).toBeNull();
      const h = history({ sendsInLastHour: 1, oldestSendInLastHourAt: at(-59 * MINUTE - 59 * SECOND) });
      expect(await decide(h, limits)).toEqual({ reason: 'hourly_cap', retryAfter: 1 });
    });

    it('counts sends of other devices: the cap holds when this device never had one', async () => {
      const h = history({ lastDeviceSendAt: null, sendsInLastHour: 10, oldestSendInLastHourAt: at(-1 * MINUTE) });
      expect(await decide(h, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 59 * 60 });
    });
  });

  it('reports the cooldown first when both limits refuse', async () => {
    const h = history({ lastDeviceSendAt: at(-10 * SECOND), sendsInLastHour: 10, oldestSendInLastHourAt: at(-50 * MINUTE) });
    expect(await decide(h, LIMITS)).toEqual({ reason: 'cooldown', retryAfter: 50 });
  });

  it('reports the cap once the cooldown is over', async () => {
    const h = history({ lastDeviceSendAt: at(-2 * MINUTE), sendsInLastHour: 10, oldestSendInLastHourAt: at(-50 * MINUTE) });
    expect(await decide(h, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 10 * 60 });
  });
});

describe('session_is_usable', () => {
  describe('pending', () => {
    it('is reusable with an unexpired OTP and attempts left', async () => {
      expect(await usable(session({ otpExpiresAt: at(1), otpAttemptsLeft: 1 }))).toBe(true);
    });

    it('is not reusable once the OTP expired (boundary: expiring now counts as expired)', async () => {
      expect(await usable(session({ otpExpiresAt: NOW }))).toBe(false);
      expect(await usable(session({ otpExpiresAt: at(-1) }))).toBe(false);
    });

    it('is not reusable with 0 attempts left', async () => {
      expect(await usable(session({ otpAttemptsLeft: 0 }))).toBe(false);
    });

    it('is not reusable with negative attempts left', async () => {
      expect(await usable(session({ otpAttemptsLeft: -1 }))).toBe(false);
    });
  });

  describe('confirmed', () => {
    const confirmed = (expiresAt: Date | null) =>
      session({ status: 'confirmed', expiresAt, otpExpiresAt: at(-HOUR), otpAttemptsLeft: 0 });

    it('is reusable without an expiry (null expires_at)', async () => {
      expect(await usable(confirmed(null))).toBe(true);
    });

    it('is reusable before expires_at', async () => {
      expect(await usable(confirmed(at(1)))).toBe(true);
    });

    it('is not reusable at or past expires_at', async () => {
      expect(await usable(confirmed(NOW))).toBe(false);
      expect(await usable(confirmed(at(-1)))).toBe(false);
    });

    it('ignores the (spent) OTP fields', async () => {
      expect(await usable(session({ status: 'confirmed', otpExpiresAt: at(-HOUR), otpAttemptsLeft: 0, expiresAt: at(HOUR) }))).toBe(true);
    });
  });

  it.each(['expired', 'revoked'] as const)('a %s session is never reusable', async (status) => {
    expect(await usable(session({ status, otpExpiresAt: at(HOUR), otpAttemptsLeft: 5, expiresAt: null }))).toBe(false);
    expect(await usable(session({ status, otpExpiresAt: at(HOUR), otpAttemptsLeft: 5, expiresAt: at(HOUR) }))).toBe(false);
  });
});


describe('send_otp: how far back the history is read', () => {
  it('reads further back than an hour when the cooldown is longer', async () => {
    const limits = { resendCooldown: 7200, maxSendsPerHour: 3 };
    expect(await decide(history({ lastDeviceSendAt: at(-90 * MINUTE) }), limits)).toEqual({ reason: 'cooldown', retryAfter: 30 * 60 });
    expect(await decide(history({ lastDeviceSendAt: at(-2 * HOUR) }), limits)).toBeNull();
  });
});
