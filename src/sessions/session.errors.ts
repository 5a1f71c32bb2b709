import { ApiError } from '../common/api-error.js';

/** The errors of the session rules, one place for their status, code and wording. */
export const SessionErrors = {
  unsupportedMode: () => new ApiError(400, 'unsupported_mode', 'Query parameter mode must be "email".'),
  invalidSessionId: () => new ApiError(400, 'validation_failed', 'Session id must look like ses-<uuid>.'),
  unauthorized: () =>
    new ApiError(401, 'unauthorized', 'Send Authorization: Bearer <token> with the token of this session.', {}, {
      'WWW-Authenticate': 'Bearer',
    }),
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
