import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { StartupError } from '../../src/common/startup-error.js';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server URL on which each test file creates a database of its own. */
    adminDatabaseUrl: string;
  }
}

/**
 * Once per run: a throwaway embedded PostgreSQL, unless TEST_DATABASE_URL names a server. Each
 * test file then creates its own database there (test-database.ts); the application migrates it
 * on start, as in production.
 * @returns the teardown, which stops the server and deletes its data folder
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.TEST_DATABASE_URL) {
    project.provide('adminDatabaseUrl', process.env.TEST_DATABASE_URL);
    return async () => undefined;
  }
  const server = await startEmbeddedPostgres({
    dataDir: await mkdtemp(join(tmpdir(), 'sessions-test-pg-')),
    persistent: false,
    serverFlags: ['-c', 'fsync=off', '-c', 'max_connections=300'],
  }).catch((error: unknown) => {
    // e.g. run as root from a folder the `postgres` user cannot enter: the one line says what to do.
    if (!(error instanceof StartupError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
  project.provide('adminDatabaseUrl', server.url);
  return () => server.stop();
}
