import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { EnvironmentVariables, MailWorkerMode } from './environment.js';

/** nodemailer's `dkim` transport option (RFC 6376 signing of every message). */
export interface DkimSettings {
  domainName: string;
  keySelector: string;
  /** PEM text of the private key (RSA or Ed25519). */
  privateKey: string;
}

/** How login emails are sent and what they say. */
export interface MailConfig {
  /** null: development only, mails are printed to the log. */
  smtpUrl: string | null;
  from: string;
  /** The folder whose templates override the built-in ones; null = built-in only. */
  templatesDir: string | null;
  /** Canonical BCP 47 tag (`en`, `pt-BR`); checked against the available templates at start. */
  defaultLocale: string;
  supportAddress: string | null;
  dkim: DkimSettings | null;
  /** MAIL_CONCURRENCY: mails sent at once per process that sends (worker jobs, and as many SMTP connections). */
  concurrency: number;
  /**
   * MAIL_WORKER: `inline`, the service process sends mail too (graphile-worker's runner beside the
   * HTTP server); `off`, it only queues it, for `dist/mail-worker.js` processes to send. The mail
   * worker process itself always sends, whatever this says.
   */
  worker: MailWorkerMode;
}

/**
 * Default MAIL_CONCURRENCY. An SMTP send is several round trips, each waiting for this process's
 * event loop, which logins keep busy: under load one send takes far longer than its CPU, so
 * throughput comes from sending many at once (docs/performance.md, time to inbox).
 */
export const DEFAULT_MAIL_CONCURRENCY = 20;

const DKIM_VARIABLES = ['DKIM_DOMAIN', 'DKIM_SELECTOR', 'DKIM_PRIVATE_KEY'] as const;

/**
 * The mail settings of the checked environment. Adds to `problems` (one line each, as
 * `checkEnvironment` does, so that the start reports every problem at once): only some DKIM_*
 * variables set, a DKIM_PRIVATE_KEY that is neither a PEM private key nor a readable file holding
 * one, a MAIL_DEFAULT_LOCALE that is not a valid BCP 47 tag.
 * @param raw the environment as given, to tell "unset" from "set but invalid" (already reported)
 */
export function mailConfig(env: EnvironmentVariables, raw: Record<string, string | undefined>, problems: string[]): MailConfig {
  return {
    smtpUrl: env.SMTP_URL ?? null,
    from: env.MAIL_FROM ?? 'Sessions <no-reply@localhost>',
    templatesDir: env.MAIL_TEMPLATES_DIR ?? null,
    defaultLocale: canonicalLocale(env.MAIL_DEFAULT_LOCALE ?? 'en', problems),
    supportAddress: env.MAIL_SUPPORT_ADDRESS ?? null,
    dkim: dkimSettings(env, raw, problems),
    concurrency: env.MAIL_CONCURRENCY ?? DEFAULT_MAIL_CONCURRENCY,
    worker: env.MAIL_WORKER ?? 'inline',
  };
}

function canonicalLocale(tag: string, problems: string[]): string {
  try {
    return Intl.getCanonicalLocales(tag)[0];
  } catch {
    problems.push(`MAIL_DEFAULT_LOCALE=${JSON.stringify(tag)}: not a valid BCP 47 language tag (e.g. en, de, pt-BR)`);
    return 'en';
  }
}

function dkimSettings(env: EnvironmentVariables, raw: Record<string, string | undefined>, problems: string[]): DkimSettings | null {
  const given = DKIM_VARIABLES.filter((name) => Boolean(raw[name]?.trim()));
  if (given.length === 0) return null;
  if (given.length < DKIM_VARIABLES.length) {
    const missing = DKIM_VARIABLES.filter((name) => !given.includes(name));
    problems.push(
      `${missing.join(', ')} must be set too: DKIM signing needs DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY together (or none of them)`,
    );
    return null;
  }
  const privateKey = dkimPrivateKey(raw.DKIM_PRIVATE_KEY!.trim(), problems);
  // An invalid DKIM_DOMAIN or DKIM_SELECTOR is already among the problems (and unset in env).
  if (!env.DKIM_DOMAIN || !env.DKIM_SELECTOR || privateKey === null) return null;
  return { domainName: env.DKIM_DOMAIN, keySelector: env.DKIM_SELECTOR, privateKey };
}

/**
 * The PEM text of DKIM_PRIVATE_KEY: the value itself when it starts with `-----BEGIN` (a `\n`
 * written literally, as one-line environment files need, counts as a line break), otherwise the
 * contents of the file it names. Parsed here so that a wrong key stops the start, not the first mail.
 * The key itself never appears in a message.
 */
function dkimPrivateKey(value: string, problems: string[]): string | null {
  let pem: string;
  if (value.startsWith('-----BEGIN')) {
    pem = value.replace(/\\n/g, '\n');
  } else {
    try {
      pem = readFileSync(value, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
      problems.push(`DKIM_PRIVATE_KEY: not PEM text (-----BEGIN …) and the file ${JSON.stringify(value)} cannot be read (${reason})`);
      return null;
    }
  }
  try {
    createPrivateKey(pem);
  } catch (error) {
    problems.push(`DKIM_PRIVATE_KEY: not a PEM private key (${error instanceof Error ? error.message : String(error)})`);
    return null;
  }
  return pem;
}
