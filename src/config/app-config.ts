import { randomBytes } from 'node:crypto';
import type { Level } from 'pino';
import proxyaddr from 'proxy-addr';
import { checkEnvironment, ConfigurationError, type EnvironmentVariables, type LogLevelName } from './environment.js';
import { mailConfig, type MailConfig } from './mail-config.js';

/** Port of the embedded PostgreSQL unless EMBEDDED_DB_PORT says otherwise (stable, so Adminer and psql find it again). */
export const DEFAULT_EMBEDDED_DB_PORT = 54329;

/** Nest's level names as the pino levels they mean; pino's own names map to themselves. */
const PINO_LEVEL: Record<LogLevelName, Level> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  info: 'info',
  log: 'info',
  debug: 'debug',
  trace: 'trace',
  verbose: 'trace',
};

/** Where the service's PostgreSQL is: a URL, the seed's DB_* parts, or the embedded server. */
export type DatabaseTarget =
  | { kind: 'url'; url: string }
  | { kind: 'parts'; host: string; port: number; username: string; password: string; database: string }
  | { kind: 'embedded'; dataDir: string; port: number };

/**
 * The validated, typed configuration. Built once at boot from the environment.
 * Durations are whole seconds.
 */
export class AppConfig {
  /** NODE_ENV as given (default `development`): any name; only `production` and `development` have rules of their own. */
  nodeEnv: string;
  port: number;
  /**
   * Address to listen on (HOST); null = every IPv6 and IPv4 address. Default: `localhost` (loopback
   * only) in development, where codes are printed to the log; every address otherwise.
   */
  host: string | null;
  database: DatabaseTarget;
  /** Key for OTP HMACs (and future encryption); at least 32 characters. */
  appSecret: string;
  /** True when no APP_SECRET was given and a random one was made for this process. */
  appSecretGenerated: boolean;
  /** The product name login emails show (APP_NAME). */
  appName: string;
  mail: MailConfig;
  otp: { ttl: number; maxAttempts: number; resendCooldown: number; maxSendsPerHour: number };
  /** Lifetimes of confirmed sessions (seconds) and how long ended ones are kept (days). */
  session: { othrTtl: number; mobiTtl: number | null; retentionDays: number };
  /** Per-client-IP requests per minute on the session endpoints; 0 = off. Shared through Redis when set. */
  rateLimit: { perMinute: number; redisUrl: string | null };
  /** Which proxies' X-Forwarded-For to believe for the client IP: false, true, a hop count, or proxy-addr rules. */
  trustProxy: boolean | number | string;
  /** Origins allowed by CORS; empty = no cross-origin access. */
  corsOrigins: string[];
  /** Seconds after SIGTERM/SIGINT during which new connections are still accepted and served (readiness already 503). */
  shutdownDelay: number;
  /** Seconds requests in flight get to finish once the listener is closed (after `shutdownDelay`). */
  shutdownGracePeriod: number;
  /** The pino level (LOG_LEVEL's Nest names mapped: log = info, verbose = trace). */
  logLevel: Level;
  /** Serve the sign-in and "my devices" page at `/`: on unless NODE_ENV=production, where it must be asked for. */
  webUi: boolean;
}

/**
 * Builds the configuration from raw environment variables.
 * @throws ConfigurationError listing, at once, every invalid variable and every production
 *   requirement that is missing (`APP_SECRET`, `SMTP_URL`, a database).
 */
export function loadAppConfig(raw: Record<string, string | undefined>): AppConfig {
  const { env, problems } = checkEnvironment(raw);
  const nodeEnv = env.NODE_ENV ?? 'development';
  const production = nodeEnv === 'production';

  // Checked on the raw values: an invalid APP_SECRET is reported above, not as missing too.
  const given = (name: string) => Boolean(raw[name]?.trim());
  if (production && !given('APP_SECRET')) problems.push('APP_SECRET (at least 32 characters) is required when NODE_ENV=production');
  // The log transport prints codes, so it is only allowed in development: any other NODE_ENV
  // (production, staging, qa, test, ...) may be reachable by real people.
  if (nodeEnv !== 'development' && !given('SMTP_URL')) problems.push(`SMTP_URL is required when NODE_ENV=${nodeEnv}`);
  if (production && !given('DATABASE_URL') && !given('DB_HOST')) problems.push('DATABASE_URL (or DB_HOST) is required when NODE_ENV=production');
  const trust = trustProxy(env.TRUST_PROXY);
  if (typeof trust === 'object') problems.push(trust.problem);
  const mail = mailConfig(env, raw, problems);
  if (problems.length > 0) throw new ConfigurationError(`Invalid configuration:\n  ${problems.join('\n  ')}`);

  return {
    nodeEnv,
    port: env.PORT ?? 8080,
    host: env.HOST ?? (nodeEnv === 'development' ? 'localhost' : null),
    database: databaseTarget(env),
    appSecret: env.APP_SECRET ?? randomBytes(32).toString('base64url'),
    appSecretGenerated: !env.APP_SECRET,
    appName: env.APP_NAME ?? 'Session Management',
    mail,
    otp: {
      ttl: env.OTP_TTL ?? 300,
      maxAttempts: env.OTP_MAX_ATTEMPTS ?? 5,
      resendCooldown: env.OTP_RESEND_COOLDOWN ?? 60,
      maxSendsPerHour: env.OTP_MAX_SENDS_PER_HOUR ?? 10,
    },
    session: {
      othrTtl: env.OTHR_SESSION_TTL ?? 7200,
      mobiTtl: env.MOBI_SESSION_TTL ?? null,
      retentionDays: env.SESSION_RETENTION_DAYS ?? 30,
    },
    rateLimit: { perMinute: env.RATE_LIMIT_PER_MINUTE ?? 60, redisUrl: env.REDIS_URL ?? null },
    trustProxy: trust as boolean | number | string,
    corsOrigins: env.CORS_ORIGINS ? env.CORS_ORIGINS.split(',').map((origin) => origin.trim().replace(/\/$/, '')) : [],
    shutdownDelay: env.SHUTDOWN_DELAY ?? 0,
    shutdownGracePeriod: env.SHUTDOWN_GRACE_PERIOD ?? 10,
    logLevel: PINO_LEVEL[env.LOG_LEVEL ?? (production ? 'info' : 'debug')],
    webUi: env.WEB_UI === undefined ? !production : env.WEB_UI === 'true',
  };
}

/** TRUST_PROXY as Fastify takes it, or the problem with it. */
function trustProxy(value: string | undefined): boolean | number | string | { problem: string } {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  try {
    proxyaddr.compile(value.split(',').map((entry) => entry.trim())); // what Fastify will do with it
  } catch (error) {
    return {
      problem:
        `TRUST_PROXY=${JSON.stringify(value)}: ${error instanceof Error ? error.message : String(error)} ` +
        '(use true, false, a hop count, or IP addresses/subnets and loopback, linklocal, uniquelocal)',
    };
  }
  return value;
}

function databaseTarget(env: EnvironmentVariables): DatabaseTarget {
  if (env.DATABASE_URL) return { kind: 'url', url: env.DATABASE_URL };
  if (env.DB_HOST) {
    return {
      kind: 'parts',
      host: env.DB_HOST,
      port: env.DB_PORT ?? 5432,
      username: env.DB_USERNAME ?? 'postgres',
      password: env.DB_PASSWORD ?? '',
      database: env.DB_NAME ?? 'sessiondb',
    };
  }
  return { kind: 'embedded', dataDir: env.EMBEDDED_DB_DIR ?? './.data/postgres', port: env.EMBEDDED_DB_PORT ?? DEFAULT_EMBEDDED_DB_PORT };
}
