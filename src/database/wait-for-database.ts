import pg from 'pg';
import { StartupError } from '../common/startup-error.js';
import type { DatabaseTarget } from '../config/app-config.js';

/** How often, and how far apart, a database that cannot be reached yet is tried at start (≈ 30 s). */
export const CONNECT_ATTEMPTS = 10;
export const CONNECT_RETRY_DELAY_MS = 3_000;
const CONNECT_TIMEOUT_MS = 5_000;

/** Why a connection failed, which setting to check, and whether trying again may help. */
export interface ConnectionFailure {
  reason: string;
  setting: string;
  transient: boolean;
}

/**
 * Explains a failed connection to PostgreSQL in terms of the configuration: which variables to
 * check (DATABASE_URL, or DB_HOST/DB_PORT, DB_USERNAME/DB_PASSWORD, DB_NAME) and why it failed.
 * A refused, unresolvable or silent server may come up later (transient); a wrong password or a
 * missing database will not.
 */
export function describeConnectionFailure(error: unknown, target: DatabaseTarget, url: string): ConnectionFailure {
  const { code, message } = firstCause(error);
  const { username, database } = urlParts(url);
  const setting = (parts: string) => (target.kind === 'url' ? 'DATABASE_URL' : target.kind === 'parts' ? parts : 'the embedded PostgreSQL');
  switch (code) {
    case 'ECONNREFUSED':
      return { reason: 'connection refused (nothing listens on that host and port)', setting: setting('DB_HOST and DB_PORT'), transient: true };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { reason: 'the host name does not resolve', setting: setting('DB_HOST'), transient: true };
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { reason: `no answer (${code})`, setting: setting('DB_HOST and DB_PORT'), transient: true };
    case '28P01':
      return { reason: `password authentication failed for user "${username}"`, setting: setting('DB_USERNAME and DB_PASSWORD'), transient: false };
    case '28000':
      return { reason: `the server refuses user "${username}" (${message})`, setting: setting('DB_USERNAME and DB_PASSWORD'), transient: false };
    case '3D000':
      return { reason: `database "${database}" does not exist`, setting: setting('DB_NAME'), transient: false };
    case '57P03':
      return { reason: 'the server is starting up', setting: setting('DB_HOST and DB_PORT'), transient: true };
    default:
      return {
        reason: /timeout/i.test(message) ? `no answer within ${CONNECT_TIMEOUT_MS / 1000} s` : message || String(error),
        setting: setting('DB_HOST and DB_PORT'),
        transient: true,
      };
  }
}

/**
 * Connects once to the configured PostgreSQL before TypeORM and the migrations do, so that a wrong
 * setting is reported at once, in one log line per attempt (the password never shown), instead of
 * ≈ 30 s of silence and framework stack traces.
 *
 * @param log receives one line per failed attempt (warn) and the final one (error)
 * @throws StartupError (already logged) when the server refuses for good (wrong password, missing
 *   database) or is still unreachable after CONNECT_ATTEMPTS attempts
 */
export async function waitForDatabase(
  url: string,
  target: DatabaseTarget,
  log: { warn(line: string): void; error(line: string): void },
  options: { attempts?: number; retryDelayMs?: number } = {},
): Promise<void> {
  const attempts = options.attempts ?? CONNECT_ATTEMPTS;
  const retryDelayMs = options.retryDelayMs ?? CONNECT_RETRY_DELAY_MS;
  const where = location(url);
  for (let attempt = 1; ; attempt++) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    client.on('error', () => undefined); // a connection lost after the check is not this check's concern
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => undefined);
      const failure = describeConnectionFailure(error, target, url);
      const sentence = `Cannot connect to PostgreSQL at ${where}: ${failure.reason}; check ${failure.setting}`;
      if (!failure.transient || attempt >= attempts) {
        const line = failure.transient ? `${sentence} (gave up after ${attempts} attempts)` : sentence;
        log.error(line);
        throw new StartupError(line, true);
      }
      log.warn(`${sentence} (attempt ${attempt} of ${attempts}; retrying in ${retryDelayMs / 1000} s)`);
      await new Promise((wake) => setTimeout(wake, retryDelayMs));
    }
  }
}

/** The innermost error with a code (pg wraps nothing, but Node reports several addresses as an AggregateError). */
function firstCause(error: unknown): { code: string | undefined; message: string } {
  const e = error as { code?: unknown; message?: unknown; errors?: unknown[] };
  const inner = Array.isArray(e?.errors) && e.errors.length > 0 ? (e.errors[0] as { code?: unknown }) : undefined;
  const code = typeof e?.code === 'string' ? e.code : typeof inner?.code === 'string' ? inner.code : undefined;
  return { code, message: typeof e?.message === 'string' ? e.message : '' };
}

function urlParts(url: string): { username: string; database: string } {
  try {
    const parsed = new URL(url);
    return { username: decodeURIComponent(parsed.username), database: decodeURIComponent(parsed.pathname.slice(1)) };
  } catch {
    return { username: '', database: '' };
  }
}

/** `host:port/database` of a postgres:// URL: never the user or password. */
function location(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '5432'}/${decodeURIComponent(parsed.pathname.slice(1))}`;
  } catch {
    return '(an unreadable URL)';
  }
}
