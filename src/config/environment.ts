import { plainToInstance } from 'class-transformer';
import {
  IsIn,
  IsEmail,
  IsFQDN,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  validateSync,
} from 'class-validator';

const seconds = (min: number) => ({ message: `$property must be a whole number of seconds, at least ${min}` });
/** One message for every way a port can be wrong (`abc`, `1.5`, `0`, `70000`). */
const port = { message: '$property must be a whole number, a TCP port from 1 to 65535' };

/**
 * LOG_LEVEL names: pino's (fatal, error, warn, info, debug, trace: the names the log lines print)
 * and Nest's (log = info, verbose = trace).
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'log', 'debug', 'trace', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/**
 * MAIL_WORKER values: `inline` (the default), the service process runs the mail worker beside its
 * HTTP server; `off`, it only queues mail, which separate `dist/mail-worker.js` processes send.
 */
export const MAIL_WORKER_MODES = ['inline', 'off'] as const;
export type MailWorkerMode = (typeof MAIL_WORKER_MODES)[number];

/**
 * The environment variables the service reads, as documented in `.env.example`.
 * Numbers arrive as strings and are converted; an empty value counts as unset.
 */
export class EnvironmentVariables {
  /** Any name: only `production` and `development` (the default) have rules of their own (SPEC "Security rules"). */
  @IsOptional() @IsString()
  NODE_ENV?: string;

  @IsOptional() @IsInt(port) @Min(1, port) @Max(65535, port)
  PORT?: number;

  /** Address to listen on: an IP address or a host name (`localhost`: loopback, IPv4 and IPv6). */
  @IsOptional() @Matches(/^[0-9A-Za-z.:_-]+$/, { message: '$property must be an IP address or host name to listen on, e.g. 127.0.0.1, ::, 0.0.0.0 or localhost' })
  HOST?: string;

  @IsOptional() @Matches(/^postgres(ql)?:\/\/.+/, { message: '$property must be a postgres:// URL' })
  DATABASE_URL?: string;

  @IsOptional() @IsString()
  DB_HOST?: string;

  @IsOptional() @IsInt(port) @Min(1, port) @Max(65535, port)
  DB_PORT?: number;

  @IsOptional() @IsString()
  DB_USERNAME?: string;

  @IsOptional() @IsString()
  DB_PASSWORD?: string;

  @IsOptional() @IsString()
  DB_NAME?: string;

  @IsOptional() @IsString() @MinLength(32, { message: '$property must be at least 32 characters long' })
  APP_SECRET?: string;

  @IsOptional() @Matches(/^smtps?:\/\/.+/, { message: '$property must be an smtp:// or smtps:// URL' })
  SMTP_URL?: string;

  @IsOptional() @IsString()
  MAIL_FROM?: string;

  /** The product name the login email shows (subject, greeting). */
  @IsOptional() @IsString() @MaxLength(100) @Matches(/^[^\p{Cc}]+$/u, { message: '$property must be one line without control characters' })
  APP_NAME?: string;

  /** A folder of Handlebars templates overriding the built-in ones (`<locale>/subject.hbs|text.hbs|html.hbs`). */
  @IsOptional() @IsString()
  MAIL_TEMPLATES_DIR?: string;

  /** BCP 47 language tag of the login email when Accept-Language names no available one. */
  @IsOptional() @Matches(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/, { message: '$property must be a BCP 47 language tag such as en, de or pt-BR' })
  MAIL_DEFAULT_LOCALE?: string;

  @IsOptional() @IsEmail({}, { message: '$property must be an email address' })
  MAIL_SUPPORT_ADDRESS?: string;

  /** Login emails sent at once per replica: mail worker jobs and SMTP connections. */
  @IsOptional() @IsInt() @Min(1) @Max(100)
  MAIL_CONCURRENCY?: number;

  /** Whether the service process also sends the mail (`inline`) or leaves it to `dist/mail-worker.js` processes (`off`). */
  @IsOptional() @IsIn(MAIL_WORKER_MODES, { message: `$property must be ${MAIL_WORKER_MODES.join(' or ')}` })
  MAIL_WORKER?: MailWorkerMode;

  /** DKIM signing (RFC 6376): all three or none. */
  @IsOptional() @IsFQDN({}, { message: '$property must be a domain name such as example.com' })
  DKIM_DOMAIN?: string;

  @IsOptional() @Matches(/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/, {
    message: '$property must be a DKIM selector (DNS labels, e.g. mail2026)',
  })
  DKIM_SELECTOR?: string;

  /** PEM text (starting with -----BEGIN; newlines may be written as \n) or the path of a PEM file. */
  @IsOptional() @IsString()
  DKIM_PRIVATE_KEY?: string;

  @IsOptional() @IsInt(seconds(1)) @Min(1, seconds(1))
  OTP_TTL?: number;

  @IsOptional() @IsInt() @Min(1) @Max(100)
  OTP_MAX_ATTEMPTS?: number;

  @IsOptional() @IsInt(seconds(0)) @Min(0, seconds(0))
  OTP_RESEND_COOLDOWN?: number;

  @IsOptional() @IsInt() @Min(1)
  OTP_MAX_SENDS_PER_HOUR?: number;

  @IsOptional() @IsInt(seconds(1)) @Min(1, seconds(1))
  OTHR_SESSION_TTL?: number;

  @IsOptional() @IsInt(seconds(1)) @Min(1, seconds(1))
  MOBI_SESSION_TTL?: number;

  @IsOptional() @IsInt() @Min(1, { message: '$property must be a whole number of days, at least 1' })
  SESSION_RETENTION_DAYS?: number;

  @IsOptional() @IsInt(seconds(0)) @Min(0, seconds(0))
  SHUTDOWN_GRACE_PERIOD?: number;

  @IsOptional() @IsInt(seconds(0)) @Min(0, seconds(0))
  SHUTDOWN_DELAY?: number;

  @IsOptional() @Matches(/^rediss?:\/\/.+/, { message: '$property must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  @IsOptional() @IsInt() @Min(0, { message: '$property must be a whole number of requests, 0 to turn the limit off' })
  RATE_LIMIT_PER_MINUTE?: number;

  /** Which proxies to believe (proxy-addr rules, as Express's "trust proxy"): false, true, a hop count, or a comma list of addresses/subnets/names. */
  @IsOptional() @Matches(/^(true|false|\d+|[0-9A-Za-z.:/,\s]+)$/, { message: '$property must be true, false, a hop count or a list of proxy addresses' })
  TRUST_PROXY?: string;

  /** Comma-separated origins allowed by CORS, e.g. https://app.example.com */
  @IsOptional() @Matches(/^https?:\/\/[^\s,]+(\s*,\s*https?:\/\/[^\s,]+)*$/, { message: '$property must be a comma-separated list of http(s) origins' })
  CORS_ORIGINS?: string;

  @IsOptional() @IsString()
  EMBEDDED_DB_DIR?: string;

  @IsOptional() @IsInt(port) @Min(1, port) @Max(65535, port)
  EMBEDDED_DB_PORT?: number;

  @IsOptional() @IsIn(LOG_LEVELS, { message: `$property must be one of ${LOG_LEVELS.join(', ')}` })
  LOG_LEVEL?: LogLevelName;

  /** Serve the sign-in and "my devices" page at `/` (src/web-ui/). */
  @IsOptional() @IsIn(['true', 'false'], { message: '$property must be true or false' })
  WEB_UI?: 'true' | 'false';
}

const NUMERIC = new Set([
  'PORT',
  'DB_PORT',
  'EMBEDDED_DB_PORT',
  'OTP_TTL',
  'OTP_MAX_ATTEMPTS',
  'OTP_RESEND_COOLDOWN',
  'OTP_MAX_SENDS_PER_HOUR',
  'OTHR_SESSION_TTL',
  'MOBI_SESSION_TTL',
  'SESSION_RETENTION_DAYS',
  'SHUTDOWN_GRACE_PERIOD',
  'SHUTDOWN_DELAY',
  'RATE_LIMIT_PER_MINUTE',
  'MAIL_CONCURRENCY',
]);

/** Thrown at boot when a variable is invalid; the message names every offending variable. */
export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
}

/**
 * Validates the raw environment and converts numbers.
 * @throws ConfigurationError naming each invalid variable and what it must be.
 */
export function validateEnvironment(raw: Record<string, string | undefined>): EnvironmentVariables {
  const { env, problems } = checkEnvironment(raw);
  if (problems.length > 0) throw new ConfigurationError(`Invalid configuration:\n  ${problems.join('\n  ')}`);
  return env;
}

/**
 * The environment with numbers converted, and one line per invalid variable (`NAME="value": what
 * it must be`), so that a caller can add its own findings and report all of them at once.
 */
export function checkEnvironment(raw: Record<string, string | undefined>): { env: EnvironmentVariables; problems: string[] } {
  const plain: Record<string, unknown> = {};
  for (const key of Object.keys(new EnvironmentVariablesKeys())) {
    const value = raw[key]?.trim();
    if (value === undefined || value === '') continue;
    // Only plain decimal integers become numbers; anything else stays a string and fails @IsInt.
    plain[key] = NUMERIC.has(key) && /^-?\d+$/.test(value) ? Number(value) : value;
  }
  const env = plainToInstance(EnvironmentVariables, plain);
  const errors = validateSync(env, { forbidUnknownValues: true, stopAtFirstError: true });
  const problems = errors.map(
    // The value as written (`PORT="0"`), not as converted.
    (e) => `${e.property}=${shown(e.property, raw[e.property]?.trim())}: ${Object.values(e.constraints ?? {}).join('; ')}`,
  );
  // An invalid value is not used: the caller then sees the variable as unset (its default).
  for (const e of errors) Reflect.deleteProperty(env, e.property);
  return { env, problems };
}

/** Variables whose value is a secret, or may carry one (a password in a URL). */
const SECRET = new Set(['APP_SECRET', 'DB_PASSWORD', 'DATABASE_URL', 'SMTP_URL', 'REDIS_URL', 'DKIM_PRIVATE_KEY']);

/** A value as an error message may show it: secrets as their length only. */
function shown(key: string, value: unknown): string {
  return SECRET.has(key) ? `(${String(value).length} characters, not shown)` : JSON.stringify(value);
}

/** The list of keys, kept in one place with the class above. */
class EnvironmentVariablesKeys implements Required<Record<keyof EnvironmentVariables, undefined>> {
  NODE_ENV = undefined;
  PORT = undefined;
  DATABASE_URL = undefined;
  DB_HOST = undefined;
  DB_PORT = undefined;
  DB_USERNAME = undefined;
  DB_PASSWORD = undefined;
  DB_NAME = undefined;
  APP_SECRET = undefined;
  SMTP_URL = undefined;
  MAIL_FROM = undefined;
  APP_NAME = undefined;
  MAIL_TEMPLATES_DIR = undefined;
  MAIL_DEFAULT_LOCALE = undefined;
  MAIL_SUPPORT_ADDRESS = undefined;
  MAIL_CONCURRENCY = undefined;
  MAIL_WORKER = undefined;
  DKIM_DOMAIN = undefined;
  DKIM_SELECTOR = undefined;
  DKIM_PRIVATE_KEY = undefined;
  OTP_TTL = undefined;
  OTP_MAX_ATTEMPTS = undefined;
  OTP_RESEND_COOLDOWN = undefined;
  OTP_MAX_SENDS_PER_HOUR = undefined;
  OTHR_SESSION_TTL = undefined;
  MOBI_SESSION_TTL = undefined;
  SESSION_RETENTION_DAYS = undefined;
  SHUTDOWN_GRACE_PERIOD = undefined;
  SHUTDOWN_DELAY = undefined;
  REDIS_URL = undefined;
  RATE_LIMIT_PER_MINUTE = undefined;
  TRUST_PROXY = undefined;
  CORS_ORIGINS = undefined;
  EMBEDDED_DB_DIR = undefined;
  EMBEDDED_DB_PORT = undefined;
  HOST = undefined;
  LOG_LEVEL = undefined;
  WEB_UI = undefined;
}
