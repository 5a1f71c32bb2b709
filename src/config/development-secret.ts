import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigurationError } from './environment.js';

/** Where a development start keeps the APP_SECRET it generated (the git-ignored data folder). */
export const DEVELOPMENT_SECRET_FILE = './.data/dev-secret';

/**
 * Gives a development start without `APP_SECRET` a secret that survives restarts and hot reloads:
 * the one kept in `file`, made (32 random bytes, base64url) and written there with mode 600 on
 * first use. A secret made per start would make every code mailed before a restart unusable, since
 * codes are stored as HMACs keyed with it. Sets `env.APP_SECRET`, so that every later reading of the
 * environment sees the same value.
 *
 * Only when `NODE_ENV` is `development` or unset: production requires `APP_SECRET`, and other
 * environments keep a secret per start (nothing is written into their working directory).
 *
 * @returns the file's absolute path and whether it was created now; null when nothing was done
 * @throws ConfigurationError when the file exists but holds fewer than 32 characters
 */
export function useDevelopmentSecret(
  env: Record<string, string | undefined>,
  file = DEVELOPMENT_SECRET_FILE,
): { path: string; created: boolean } | null {
  const nodeEnv = env.NODE_ENV?.trim() || 'development';
  if (nodeEnv !== 'development' || env.APP_SECRET?.trim()) return null;
  const path = resolve(file);
  let created = false;
  try {
    env.APP_SECRET = read(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    created = create(path);
    env.APP_SECRET = read(path);
  }
  return { path, created };
}

function read(path: string): string {
  const secret = readFileSync(path, 'utf8').trim();
  if (secret.length < 32) {
    throw new ConfigurationError(
      `Invalid configuration:\n  ${path} holds the development APP_SECRET but has fewer than 32 characters: ` +
        'delete the file to have a new one made, or set APP_SECRET',
    );
  }
  return secret;
}

/**
 * Writes a new secret to a private temporary file and links it into place: two processes starting
 * at once both end up reading the one complete file that won (link fails with EEXIST for the other).
 * @returns whether this call's secret is the one in place
 */
function create(path: string): boolean {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  rmSync(temporary, { force: true }); // left by a killed start: 'wx' below then creates it with mode 600
  writeFileSync(temporary, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    unlinkSync(temporary);
  }
}

/**
 * Warns, at start, where APP_SECRET came from when it was not set: the development secret file
 * (`useDevelopmentSecret`'s result), or a random secret for this process only (`generated`), with
 * `consequence` saying what that means for this process.
 */
export function warnAboutAppSecret(
  logger: { warn(message: string, context: string): void },
  developmentSecret: { path: string; created: boolean } | null,
  generated: boolean,
  consequence: string,
): void {
  if (developmentSecret) {
    logger.warn(
      `APP_SECRET is not set: using the development secret kept in ${developmentSecret.path}` +
        `${developmentSecret.created ? ' (made now)' : ''}; production requires APP_SECRET.`,
      'Bootstrap',
    );
  } else if (generated) {
    logger.warn(`APP_SECRET is not set: a random one is used for this process only${consequence}.`, 'Bootstrap');
  }
}
