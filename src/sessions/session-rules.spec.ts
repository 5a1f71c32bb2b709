import {
  checkSendLimits,
  confirmedExpiry,
  isReusable,
  sendWindow,
  type SendHistory,
  type SessionState,
} from './session-rules.js';

const NOW = new Date('2026-01-01T12:00:00.000Z');
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

const LIMITS = { resendCooldown: 60, maxSendsPerHour: 10 };

function history(overrides: Partial<SendHistory> = {}): SendHistory {
  return { lastDeviceSendAt: null, sendsInLastHour: 0, oldestSendInLastHourAt: null, ...overrides };
}

function session(overrides: Partial<SessionState> = {}): SessionState {
  return { status: 'pending', otpExpiresAt: at(5 * MINUTE), otpAttemptsLeft: 5, expiresAt: null, ...overrides };
}

/** A `codeMatches` callback that records how often it was asked. */
function codeCheck(result: boolean) {
  const check = () => {
    check.calls += 1;
    return result;
  };
  check.calls = 0;
  return check;
}

describe('checkSendLimits', () => {
  it('allows a first send (no history)', () => {
    expect(checkSendLimits(history(), NOW, LIMITS)).toBeNull();
  });

  describe('per-device cooldown', () => {
    it('allows a send exactly when the cooldown ends', () => {
      expect(checkSendLimits(history({ lastDeviceSendAt: at(-60 * SECOND) }), NOW, LIMITS)).toBeNull();
    });

    it('allows a send after the cooldown', () => {
      expect(checkSendLimits(history({ lastDeviceSendAt: at(-61 * SECOND) }), NOW, LIMITS)).toBeNull();
    });

    it('refuses 1 ms before the cooldown ends, with Retry-After 1 (rounded up, never 0)', () => {
      expect(checkSendLimits(history({ lastDeviceSendAt: at(-60 * SECOND + 1) }), NOW, LIMITS)).toEqual({
        reason: 'cooldown',
        retryAfter: 1,
      });
    });

    it('refuses right after a send with Retry-After equal to the whole cooldown', () => {
      expect(checkSendLimits(history({ lastDeviceSendAt: NOW }), NOW, LIMITS)).toEqual({
        reason: 'cooldown',
        retryAfter: 60,
      });
    });

    it('rounds a fractional remainder up', () => {
      // 59.5 s left → 60; 30.001 s left → 31; exactly 30 s left → 30.
      expect(checkSendLimits(history({ lastDeviceSendAt: at(-500) }), NOW, LIMITS)?.retryAfter).toBe(60);
      expect(checkSendLimits(history({ lastDeviceSendAt: at(-29_999) }), NOW, LIMITS)?.retryAfter).toBe(31);
      expect(checkSendLimits(history({ lastDeviceSendAt: at(-30 * SECOND) }), NOW, LIMITS)?.retryAfter).toBe(30);
    });

    it('uses the configured cooldown length', () => {
      const limits = { ...LIMITS, resendCooldown: 5 };
      expect(checkSendLimits(history({ lastDeviceSendAt: at(-5 * SECOND) }), NOW, limits)).toBeNull();
      expect(checkSendLimits(history({ lastDeviceSendAt: at(-2 * SECOND) }), NOW, limits)).toEqual({
        reason: 'cooldown',
        retryAfter: 3,
      });
    });

    it('is disabled by a cooldown of 0, even for a send this very instant', () => {
      const limits = { ...LIMITS, resendCooldown: 0 };
      expect(checkSendLimits(history({ lastDeviceSendAt: NOW }), NOW, limits)).toBeNull();
    });

    it('a cooldown of 0 does not disable the hourly cap', () => {
      const limits = { ...LIMITS, resendCooldown: 0 };
      const h = history({ lastDeviceSendAt: NOW, sendsInLastHour: 10, oldestSendInLastHourAt: at(-10 * MINUTE) });
      expect(checkSendLimits(h, NOW, limits)).toEqual({ reason: 'hourly_cap', retryAfter: 50 * 60 });
    });
  });

  describe('hourly cap per email address', () => {
    it('allows the send that reaches the cap (cap - 1 already sent)', () => {
      const h = history({ sendsInLastHour: 9, oldestSendInLastHourAt: at(-30 * MINUTE) });
      expect(checkSendLimits(h, NOW, LIMITS)).toBeNull();
    });

    it('refuses once the cap is reached, Retry-After counted from the oldest send + 1 h', () => {
      const h = history({ sendsInLastHour: 10, oldestSendInLastHourAt: at(-30 * MINUTE) });
      expect(checkSendLimits(h, NOW, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 30 * 60 });
    });

    it('refuses above the cap too', () => {
      const h = history({ sendsInLastHour: 25, oldestSendInLastHourAt: at(-59 * MINUTE) });
      expect(checkSendLimits(h, NOW, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 60 });
    });

    it('rounds the hourly Retry-After up', () => {
      // Oldest send 30 min 0.2 s ago: 1799.8 s left → 1800.
      const h = history({ sendsInLastHour: 10, oldestSendInLastHourAt: at(-30 * MINUTE - 200) });
      expect(checkSendLimits(h, NOW, LIMITS)?.retryAfter).toBe(1800);
    });

    it('never answers a Retry-After below 1', () => {
      // The oldest send leaves the window this very instant (or already has): still at least 1 s.
      const exactly = history({ sendsInLastHour: 10, oldestSendInLastHourAt: at(-HOUR) });
      expect(checkSendLimits(exactly, NOW, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 1 });
      const past = history({ sendsInLastHour: 10, oldestSendInLastHourAt: at(-HOUR - 5 * SECOND) });
      expect(checkSendLimits(past, NOW, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 1 });
    });

    it('uses the configured cap', () => {
      const limits = { ...LIMITS, maxSendsPerHour: 1 };
      expect(checkSendLimits(history(), NOW, limits)).toBeNull();
      const h = history({ sendsInLastHour: 1, oldestSendInLastHourAt: at(-59 * MINUTE - 59 * SECOND) });
      expect(checkSendLimits(h, NOW, limits)).toEqual({ reason: 'hourly_cap', retryAfter: 1 });
    });

    it('counts sends of other devices: the cap holds when this device never had one', () => {
      const h = history({ lastDeviceSendAt: null, sendsInLastHour: 10, oldestSendInLastHourAt: at(-1 * MINUTE) });
      expect(checkSendLimits(h, NOW, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 59 * 60 });
    });
  });

  it('reports the cooldown first when both limits refuse', () => {
    const h = history({ lastDeviceSendAt: at(-10 * SECOND), sendsInLastHour: 10, oldestSendInLastHourAt: at(-50 * MINUTE) });
    expect(checkSendLimits(h, NOW, LIMITS)).toEqual({ reason: 'cooldown', retryAfter: 50 });
  });

  it('reports the cap once the cooldown is over', () => {
    const h = history({ lastDeviceSendAt: at(-2 * MINUTE), sendsInLastHour: 10, oldestSendInLastHourAt: at(-50 * MINUTE) });
    expect(checkSendLimits(h, NOW, LIMITS)).toEqual({ reason: 'hourly_cap', retryAfter: 10 * 60 });
  });
});

describe('isReusable', () => {
  describe('pending', () => {
    it('is reusable with an unexpired OTP and attempts left', () => {
      expect(isReusable(session({ otpExpiresAt: at(1), otpAttemptsLeft: 1 }), NOW)).toBe(true);
    });

    it('is not reusable once the OTP expired (boundary: expiring now counts as expired)', () => {
      expect(isReusable(session({ otpExpiresAt: NOW }), NOW)).toBe(false);
      expect(isReusable(session({ otpExpiresAt: at(-1) }), NOW)).toBe(false);
    });

    it('is not reusable with 0 attempts left', () => {
      expect(isReusable(session({ otpAttemptsLeft: 0 }), NOW)).toBe(false);
    });

    it('is not reusable with negative attempts left', () => {
      expect(isReusable(session({ otpAttemptsLeft: -1 }), NOW)).toBe(false);
    });
  });

  describe('confirmed', () => {
    const confirmed = (expiresAt: Date | null) =>
      session({ status: 'confirmed', expiresAt, otpExpiresAt: at(-HOUR), otpAttemptsLeft: 0 });

    it('is reusable without an expiry (null expires_at)', () => {
      expect(isReusable(confirmed(null), NOW)).toBe(true);
    });

    it('is reusable before expires_at', () => {
      expect(isReusable(confirmed(at(1)), NOW)).toBe(true);
    });

    it('is not reusable at or past expires_at', () => {
      expect(isReusable(confirmed(NOW), NOW)).toBe(false);
      expect(isReusable(confirmed(at(-1)), NOW)).toBe(false);
    });

    it('ignores the (spent) OTP fields', () => {
      expect(isReusable(session({ status: 'confirmed', otpExpiresAt: at(-HOUR), otpAttemptsLeft: 0, expiresAt: at(HOUR) }), NOW)).toBe(true);
    });
  });

  it.each(['expired', 'revoked'] as const)('a %s session is never reusable', (status) => {
    expect(isReusable(session({ status, otpExpiresAt: at(HOUR), otpAttemptsLeft: 5, expiresAt: null }), NOW)).toBe(false);
    expect(isReusable(session({ status, otpExpiresAt: at(HOUR), otpAttemptsLeft: 5, expiresAt: at(HOUR) }), NOW)).toBe(false);
  });
});

describe('confirmedExpiry', () => {
  const confirmedAt = new Date('2026-01-01T12:00:00.000Z');

  it('othr: confirmed_at + OTHR_SESSION_TTL', () => {
    expect(confirmedExpiry('othr', confirmedAt, { othrTtl: 7200, mobiTtl: null })).toEqual(
      new Date('2026-01-01T14:00:00.000Z'),
    );
  });

  it('othr: ignores MOBI_SESSION_TTL', () => {
    expect(confirmedExpiry('othr', confirmedAt, { othrTtl: 60, mobiTtl: 86_400 })).toEqual(
      new Date('2026-01-01T12:01:00.000Z'),
    );
  });

  it('othr: keeps the milliseconds of confirmed_at', () => {
    const t = new Date('2026-01-01T12:00:00.123Z');
    expect(confirmedExpiry('othr', t, { othrTtl: 1, mobiTtl: null })).toEqual(new Date('2026-01-01T12:00:01.123Z'));
  });

  it('mobi without MOBI_SESSION_TTL: never expires (null)', () => {
    expect(confirmedExpiry('mobi', confirmedAt, { othrTtl: 7200, mobiTtl: null })).toBeNull();
  });

  it('mobi with MOBI_SESSION_TTL: confirmed_at + that TTL, not OTHR_SESSION_TTL', () => {
    expect(confirmedExpiry('mobi', confirmedAt, { othrTtl: 7200, mobiTtl: 86_400 })).toEqual(
      new Date('2026-01-02T12:00:00.000Z'),
    );
  });

  it('does not modify confirmed_at', () => {
    const t = new Date(confirmedAt);
    confirmedExpiry('othr', t, { othrTtl: 7200, mobiTtl: null });
    expect(t).toEqual(confirmedAt);
  });
});

describe('sendWindow', () => {
  /** The predicate `start_login` applies in PostgreSQL to the window (see the migration). */
  const allowedBy = (w: ReturnType<typeof sendWindow>, h: SendHistory) =>
    !((w.cooldownSince !== null && h.lastDeviceSendAt !== null && h.lastDeviceSendAt > w.cooldownSince) ||
      h.sendsInLastHour >= w.maxSendsPerHour);

  it('gives the thresholds of the configured limits', () => {
    expect(sendWindow(NOW, LIMITS)).toEqual({
      historySince: at(-HOUR),
      hourAgo: at(-HOUR),
      cooldownSince: at(-60 * SECOND),
      maxSendsPerHour: 10,
    });
  });

  it('reads further back than an hour when the cooldown is longer', () => {
    expect(sendWindow(NOW, { resendCooldown: 7200, maxSendsPerHour: 3 }).historySince).toEqual(at(-2 * HOUR));
  });

  it('has no cooldown threshold when the cooldown is off', () => {
    expect(sendWindow(NOW, { resendCooldown: 0, maxSendsPerHour: 3 }).cooldownSince).toBeNull();
  });

  it.each([
    ['no history', history()],
    ['send exactly one cooldown ago', history({ lastDeviceSendAt: at(-60 * SECOND) })],
    ['send 1 ms inside the cooldown', history({ lastDeviceSendAt: at(-60 * SECOND + 1) })],
    ['send just now', history({ lastDeviceSendAt: NOW })],
    ['9 sends in the hour', history({ sendsInLastHour: 9, oldestSendInLastHourAt: at(-30 * MINUTE) })],
    ['10 sends in the hour', history({ sendsInLastHour: 10, oldestSendInLastHourAt: at(-30 * MINUTE) })],
    ['11 sends in the hour', history({ sendsInLastHour: 11, oldestSendInLastHourAt: at(-HOUR + 1) })],
  ])('agrees with checkSendLimits: %s', (_name, h) => {
    for (const limits of [LIMITS, { resendCooldown: 0, maxSendsPerHour: 10 }, { resendCooldown: 1, maxSendsPerHour: 1 }]) {
      expect(allowedBy(sendWindow(NOW, limits), h)).toBe(checkSendLimits(h, NOW, limits) === null);
    }
  });
});
