import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { ApiError } from '../common/api-error.js';
import { SessionErrors } from '../sessions/session.errors.js';
import { ApiErrorDto } from './api-error.dto.js';

/**
 * One example body per documented error `code`, as the service answers it: built with the same
 * constructors where the error has one (SessionErrors), otherwise with the wording the HTTP layer
 * uses. `test/openapi.e2e-spec.ts` compares them with real answers.
 */
export const ERROR_EXAMPLES: Record<string, ApiError> = {
  validation_failed: new ApiError(400, 'validation_failed', 'user.email must be an email', { fields: ['user.email'] }),
  malformed_json: new ApiError(400, 'malformed_json', 'The request body is not valid JSON (an object is expected).'),
  unsupported_mode: SessionErrors.unsupportedMode(),
  otp_invalid: SessionErrors.otpInvalid(3),
  otp_expired: SessionErrors.otpExpired(),
  otp_attempts_exceeded: SessionErrors.otpAttemptsExceeded(),
  session_expired: SessionErrors.sessionExpired(),
  session_revoked: SessionErrors.sessionRevoked(),
  unauthorized: SessionErrors.unauthorized('missing'),
  session_not_found: SessionErrors.notFound(),
  session_not_pending: SessionErrors.sessionNotPending(),
  payload_too_large: new ApiError(413, 'payload_too_large', 'The request body must be at most 16384 bytes.'),
  unsupported_media_type: new ApiError(415, 'unsupported_media_type', 'Send the body as JSON with Content-Type: application/json.'),
  rate_limited: SessionErrors.rateLimited(42, 'A code was sent to this device less than 60 s ago; retry in 42 s.'),
  database_unavailable: new ApiError(503, 'database_unavailable', 'The database is not reachable right now; try again shortly.'),
  shutting_down: new ApiError(503, 'shutting_down', 'The service is shutting down.'),
};

/** `validation_failed` for a malformed session id in the path: `fields` names the parameter. */
const INVALID_SESSION_ID = SessionErrors.invalidSessionId();

/** `validation_failed` for PATCH's body (a description naming `otp_code` gets this one instead of POST's). */
const INVALID_OTP_CODE = new ApiError(400, 'validation_failed', 'otp_code must be a string of exactly 6 digits', { fields: ['otp_code'] });

/** Members of the error body a description may name in backticks beside the codes. */
const BODY_MEMBERS = new Set(['fields', 'attempts_remaining', 'retry_after', 'details']);

/** The `code`s a response description names in backticks (`otp_invalid`), in order. */
function codesIn(description: string): string[] {
  return [...description.matchAll(/`([a-z_]+)`/g)].map((match) => match[1]).filter((word) => !BODY_MEMBERS.has(word));
}

/**
 * Documents error answers of an endpoint: `[status, description naming the codes in backticks]`.
 * Each response gets the ApiErrorDto schema and one example per code it names, with that code's
 * real status and message. A description that mentions a "session id" gets the `validation_failed`
 * example of a malformed path id too (only that one when it says "not a session id").
 * @throws Error at start-up when a description names a code without an example of that status
 */
export function ApiErrorResponses(...errors: [status: number, description: string][]) {
  return applyDecorators(
    ...errors.map(([status, description]) =>
      ApiResponse({
        status,
        description,
        type: ApiErrorDto,
        examples: examplesFor(status, description),
        headers:
          status === 429
            ? { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } }
            : status === 401
              ? { 'WWW-Authenticate': { description: 'Always `Bearer` (RFC 6750 §3).', schema: { type: 'string', example: 'Bearer' } } }
              : undefined,
      }),
    ),
  );
}

function examplesFor(status: number, description: string): Record<string, { summary: string; value: Record<string, unknown> }> {
  const examples: Record<string, { summary: string; value: Record<string, unknown> }> = {};
  for (const code of codesIn(description)) {
    const example = ERROR_EXAMPLES[code];
    if (!example || example.status !== status) throw new Error(`No ${status} example for the error code ${code}`);
    if (code === 'validation_failed' && /session id/.test(description)) {
      examples.validation_failed_session_id = { summary: '400 validation_failed: a malformed session id', value: INVALID_SESSION_ID.body() };
      if (/not a session id/.test(description)) continue;
    }
    const value = code === 'validation_failed' && description.includes('otp_code') ? INVALID_OTP_CODE.body() : example.body();
    examples[code] = { summary: `${status} ${code}`, value };
  }
  return examples;
}

export const BODY_ERRORS: [number, string][] = [
  [413, '`payload_too_large`: body over 16 KiB (answered while the client is still sending; the rest is read and discarded, up to 16 MiB or 10 s).'],
  [415, '`unsupported_media_type`: a body not sent as JSON (UTF-8; identity, gzip, deflate or br).'],
];
