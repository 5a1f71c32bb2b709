import { STATUS_CODES } from 'node:http';

/**
 * An error with a stable machine-readable `code`, rendered as `body()` (RFC 9457's idea, in this
 * service's shape) by the global exception filter, and by the HTTP server for requests refused
 * before routing.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra fields merged into the body, e.g. `attempts_remaining`. */
    readonly details: Record<string, unknown> = {},
    /** Response headers, e.g. `Retry-After`. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** The response body: `{"statusCode","error","code","message", ...details}`. */
  body(): Record<string, unknown> {
    return {
      statusCode: this.status,
      error: STATUS_CODES[this.status] ?? 'Error',
      code: this.code,
      message: this.message,
      ...this.details,
    };
  }
}
