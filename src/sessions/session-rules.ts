import type { DeviceType } from './entities/device.entity.js';
import type { SessionStatus } from './entities/session.entity.js';

/** The parts of a session the rules look at. */
export interface SessionState {
  status: SessionStatus;
  otpExpiresAt: Date;
  otpAttemptsLeft: number;
  expiresAt: Date | null;
}

/** OTP emails already sent, as counted in PostgreSQL for one user and one of its devices. */
export interface SendHistory {
  /** Latest send to this device, or null. */
  lastDeviceSendAt: Date | null;
  /** Sends to this email address (all devices) in the hour before now. */
  sendsInLastHour: number;
  /** Oldest of those sends, or null when there are none. */
  oldestSendInLastHourAt: Date | null;
}

export interface SendLimits {
  /** Seconds between two sends to one device; 0 disables the cooldown. */
  resendCooldown: number;
  /** Sends per email address per rolling hour. */
  maxSendsPerHour: number;
}

export interface SendRefusal {
  reason: 'cooldown' | 'hourly_cap';
  /** Whole seconds until a send would be accepted (`Retry-After`, RFC 9110 §10.2.3), at least 1. */
  retryAfter: number;
}

const HOUR_MS = 3_600_000;

/** Whether one more OTP may be sent now; null when it may. */
export function checkSendLimits(history: SendHistory, now: Date, limits: SendLimits): SendRefusal | null {
  const t = now.getTime();
  if (limits.resendCooldown > 0 && history.lastDeviceSendAt) {
    const readyAt = history.lastDeviceSendAt.getTime() + limits.resendCooldown * 1000;
    if (readyAt > t) return { reason: 'cooldown', retryAfter: secondsUntil(readyAt, t) };
  }
  if (history.sendsInLastHour >= limits.maxSendsPerHour && history.oldestSendInLastHourAt) {
    return { reason: 'hourly_cap', retryAfter: secondsUntil(history.oldestSendInLastHourAt.getTime() + HOUR_MS, t) };
  }
  return null;
}

/**
 * The thresholds of checkSendLimits as PostgreSQL applies them when it decides a send atomically
 * (`start_login`): a send is allowed unless the device's last send is after `cooldownSince` or the
 * address already has `maxSendsPerHour` sends after `hourAgo`. `historySince` is how far back the
 * history must be read for both rules.
 */
export interface SendWindow {
  historySince: Date;
  hourAgo: Date;
  /** Null when the cooldown is off. */
  cooldownSince: Date | null;
  maxSendsPerHour: number;
}

export function sendWindow(now: Date, limits: SendLimits): SendWindow {
  const t = now.getTime();
  const hourAgo = new Date(t - HOUR_MS);
  const cooldownSince = limits.resendCooldown > 0 ? new Date(t - limits.resendCooldown * 1000) : null;
  return {
    historySince: cooldownSince && cooldownSince < hourAgo ? cooldownSince : hourAgo,
    hourAgo,
    cooldownSince,
    maxSendsPerHour: limits.maxSendsPerHour,
  };
}

/**
 * A session its token holder may be handed again without a new code: confirmed and not past
 * `expires_at`, or pending with an unexpired OTP and attempts left.
 */
export function isReusable(session: SessionState, now: Date): boolean {
  if (session.status === 'confirmed') return !isPast(session.expiresAt, now);
  if (session.status === 'pending') return session.otpExpiresAt > now && session.otpAttemptsLeft > 0;
  return false;
}

/** A session whose token authenticates its holder: confirmed and not past `expires_at`. */
export function authenticates(session: SessionState, now: Date): boolean {
  return session.status === 'confirmed' && !isPast(session.expiresAt, now);
}

/** `last_seen_at` is refreshed at most once per this many seconds per session (no write per request). */
export const LAST_SEEN_RESOLUTION = 60;

/** Whether a use of the token at `now` should refresh `last_seen_at`. */
export function lastSeenIsStale(lastSeenAt: Date | null, now: Date): boolean {
  return lastSeenAt === null || now.getTime() - lastSeenAt.getTime() >= LAST_SEEN_RESOLUTION * 1000;
}

/** `expires_at` of a session confirmed now: `othr` after OTHR_SESSION_TTL, `mobi` never unless MOBI_SESSION_TTL. */
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

function secondsUntil(atMs: number, nowMs: number): number {
  return Math.max(1, Math.ceil((atMs - nowMs) / 1000));
}
