/**
 * An error with a stable machine-readable `code`, rendered by the global exception filter as
 * `{"statusCode","error","code","message", ...details}` (RFC 9457's idea, in this service's shape).
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
}
