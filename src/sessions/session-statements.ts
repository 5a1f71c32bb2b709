/**
 * The SQL of the hot paths (login, token check, confirm), where a statement planned once per
 * connection measurably matters: each text here runs as a named statement (NAMED_STATEMENTS, given
 * to pg's pool as its `Client`, see src/database/named-statements.ts). Shared by SessionsRepository
 * and the benchmark's SQL ceilings (`bench/run.mjs` imports it from `dist/`), so the ceiling always
 * runs what the service runs.
 * Constant texts: values are always parameters.
 */

export const SESSION_COLUMNS = `
  s.id, s.status, s.token_hash AS "tokenHash", s.otp_hash AS "otpHash",
  s.otp_expires_at AS "otpExpiresAt", s.otp_attempts_left AS "otpAttemptsLeft",
  s.created_at AS "createdAt", s.confirmed_at AS "confirmedAt", s.expires_at AS "expiresAt",
  s.client_ip AS "clientIp", s.user_agent AS "userAgent", s.last_seen_at AS "lastSeenAt",
  u.id AS "userId", u.email, d.id AS "deviceId", d.type AS "deviceType", d.vendor_uuid AS "vendorUuid"`;

export const SESSION_JOINS = `sessions s JOIN users u ON u.id = s.user_id JOIN devices d ON d.id = s.device_id`;

/**
 * `usable`: whether the session can still be used at $at (SPEC: a confirmed session before its
 * `expires_at`, a pending one with a live code and attempts left), by `session_is_usable`
 * (migration 1764835200000), the one definition of the rule, which every query applies.
 */
export const USABLE_AT = (at: string) =>
  `session_is_usable(s.status, s.otp_expires_at, s.otp_attempts_left, s.expires_at, ${at})`;

export const SESSION_SQL = {
  /** $5: now, for `usable`. */
  findByTokenHashOnDevice: `SELECT ${SESSION_COLUMNS}, ${USABLE_AT('$5')} AS usable FROM ${SESSION_JOINS}
    WHERE s.token_hash = $1 AND u.email = $2 AND d.type = $3 AND d.vendor_uuid IS NOT DISTINCT FROM $4::uuid`,
  /** Parameters in the order of `start_login` (migration 1764835200000). */
  startLogin: `SELECT * FROM start_login($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
  /** The send limits, the send record and the mail (migration 1764835200000), for a resend. */
  sendOtp: `SELECT * FROM send_otp($1, $2, $3, $4, $5, $6, $7, $8)`,
  /** Parameters in the order of `confirm_session` (migration 1764662400000). */
  confirmSession: `SELECT * FROM confirm_session($1, $2, $3, $4, $5, $6)`,
  findByTokenHash: `SELECT ${SESSION_COLUMNS} FROM ${SESSION_JOINS} WHERE s.token_hash = $1`,
} as const;

/** The sessions' texts the pool's client runs as named (prepared) statements (with the mail relay's, data-source-options.ts). */
export const NAMED_STATEMENTS: readonly string[] = Object.values(SESSION_SQL);
