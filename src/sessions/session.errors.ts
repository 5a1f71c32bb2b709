import { ApiError } from '../common/api-error.js';
import type { SessionStatus } from './entities/session.entity.js';

/** Why a request was not authenticated: no usable header, an unknown token, or its session's state. */
export type UnauthorizedReason = 'missing' | 'unknown' | 'not_this_session' | 'pending' | 'expired' | 'revoked';

const UNAUTHORIZED_MESSAGES: Record<UnauthorizedReason, string> = {
  missing: 'Send Authorization: Bearer <token>, with the token returned when the session was started.',
  unknown: 'The bearer token is not valid (unknown, or its session was deleted); start a new login.',
  not_this_session: 'The bearer token is not the token of this session.',
  pending: 'The session of this token is not confirmed yet: confirm it with the emailed code (PATCH /sessions/{uuid}).',
  expired: 'The session of this token has expired; start a new login.',
  revoked: 'The session of this token has been revoked; start a new login.',
};

/** The 401 reason for the token of a session that does not authenticate (any state but a live confirmed one). */
export function unauthorizedReason(status: SessionStatus): UnauthorizedReason {
  return status === 'pending' ? 'pending' : status === 'revoked' ? 'revoked' : 'expired';
}

/** The errors of the session rules, one place for their status, code and wording. */
export const SessionErrors = {
  unsupportedMode: () => new ApiError(400, 'unsupported_mode', 'Query parameter mode must be "email".'),
  invalidSessionId: () =>
    new ApiError(400, 'validation_failed', 'The session id in the path must look like ses-<uuid>.', { fields: ['uuid'] }),
  /**
   * 401 with what is wrong: never more than the holder of the token sent can already know (the
   * state of its own session; nothing about other sessions, users or whether a token ever existed).
   */
  unauthorized: (reason: UnauthorizedReason) =>
    new ApiError(401, 'unauthorized', UNAUTHORIZED_MESSAGES[reason], {}, { 'WWW-Authenticate': 'Bearer' }),
  notFound: () => new ApiError(404, 'session_not_found', 'No such session.'),
  otpExpired: () => new ApiError(400, 'otp_expired', 'The code has expired; start a new login.'),
  otpInvalid: (attemptsRemaining: number) =>
    new ApiError(400, 'otp_invalid', 'The code is not correct.', { attempts_remaining: attemptsRemaining }),
  otpAttemptsExceeded: () =>
    new ApiError(400, 'otp_attempts_exceeded', 'Too many wrong codes for this session; start a new login.'),
  sessionExpired: () => new ApiError(400, 'session_expired', 'The session has expired; start a new login.'),
  sessionRevoked: () => new ApiError(400, 'session_revoked', 'The session has been revoked; start a new login.'),
  sessionNotPending: () =>
    new ApiError(409, 'session_not_pending', 'Only a pending session with a live code can get a new one; start a new login.'),
  rateLimited: (retryAfterSeconds: number, message: string) =>
    new ApiError(429, 'rate_limited', message, { retry_after: retryAfterSeconds }, {
      'Retry-After': String(retryAfterSeconds),
    }),
};
