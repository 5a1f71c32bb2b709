import type { DeviceType } from './entities/device.entity.js';
import type { Session } from './entities/session.entity.js';

export interface SendLimits {
  /** Seconds between two sends to one device; 0 disables the cooldown. */
  resendCooldown: number;
  /** Sends per email address per rolling hour. */
  maxSendsPerHour: number;
}

/**
 * Why PostgreSQL's `send_otp` (migration 1764835200000, the one place the send limits are decided,
 * for a new login and a resend alike) refused to send a code.
 */
export interface SendRefusal {
  /** `cooldown`: this device had a code less than OTP_RESEND_COOLDOWN s ago; `hourly_cap`: the address had OTP_MAX_SENDS_PER_HOUR in the last hour. */
  reason: 'cooldown' | 'hourly_cap';
  /** Whole seconds until a send would be accepted (`Retry-After`, RFC 9110 §10.2.3), at least 1. */
  retryAfter: number;
}

/** A session whose token authenticates its holder: confirmed and not past `expires_at`. */
export function authenticates(session: Session, now: Date): boolean {
  return session.status === 'confirmed' && !isPast(session.expiresAt, now);
}

/** `last_seen_at` is refreshed at most once per this many seconds per session (no write per request). */
export const LAST_SEEN_RESOLUTION = 60;

/** Whether a use of the session's token at `now` should refresh its `last_seen_at`. */
export function lastSeenIsStale(session: Session, now: Date): boolean {
  const { lastSeenAt } = session;
  return lastSeenAt === null || now.getTime() - lastSeenAt.getTime() >= LAST_SEEN_RESOLUTION * 1000;
}

/**
 * `expires_at` of a session of a device of this type confirmed at `confirmedAt`: `othr` after
 * OTHR_SESSION_TTL, `mobi` never unless MOBI_SESSION_TTL (seconds). Takes the type, not a device:
 * PATCH computes it for both types before `confirm_session` finds the session's device.
 */
export function confirmedExpiry(
  type: DeviceType,
  confirmedAt: Date,
  ttl: { othrTtl: number; mobiTtl: number | null },
): Date | null {
  const seconds = type === 'othr' ? ttl.othrTtl : ttl.mobiTtl;
  return seconds === null ? null : new Date(confirmedAt.getTime() + seconds * 1000);
}

function isPast(deadline: Date | null, now: Date): boolean {
  return deadline !== null && deadline <= now;
}
