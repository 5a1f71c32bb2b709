import { randomBytes } from 'node:crypto';
import { mkdtemp, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger, runMigrations as runWorkerMigrations } from 'graphile-worker';
import { DataSource } from 'typeorm';
import type { TestProject } from 'vitest/node';
import { StartupError } from '../../src/common/startup-error.js';
import { dataSourceOptions } from '../../src/database/data-source-options.js';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres.js';
import { runMigrations } from '../../src/database/run-migrations.js';
import { withAdmin } from './test-database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server URL on which each test file creates a database of its own. */
    adminDatabaseUrl: string;
    /** The name of a database on that server with every migration applied, to copy (createMigratedTestDatabase()). */
    templateDatabase: string;
  }
}

/**
 * Once per run: a throwaway embedded PostgreSQL, unless TEST_DATABASE_URL names a server. Each
 * test file then creates its own database there (test-database.ts): an empty one, which the
 * application migrates on start as in production, or a copy of the template database migrated here.
 * @returns the teardown, which drops the template and stops the server (deleting its data folder)
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let adminUrl = process.env.TEST_DATABASE_URL;
  let stopServer: () => Promise<void> = async () => undefined;
  if (!adminUrl) {
    const server = await startEmbeddedPostgres({
      dataDir: await mkdtemp(join(await scratchFolder(), 'sessions-test-pg-')),
      persistent: false,
      serverFlags: ['-c', 'fsync=off', '-c', 'max_connections=300'],
    }).catch((error: unknown) => {
      // e.g. run as root from a folder the `postgres` user cannot enter: the one line says what to do.
      if (!(error instanceof StartupError)) throw error;
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    });
    adminUrl = server.url;
    stopServer = () => server.stop();
  }
  const template = await createTemplateDatabase(adminUrl);
  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('templateDatabase', template);
  return async () => {
    await withAdmin(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`));
    await stopServer();
  };
}

/**
 * A database with what the application applies on its first start: this service's migrations (as
 * `npm run migration:run` applies them) and graphile-worker's schema (its documented
 * `runMigrations`, which the worker's `run()` otherwise does at start).
 * @returns its name
 */
async function createTemplateDatabase(adminUrl: string): Promise<string> {
  const name = `sessions_template_${randomBytes(6).toString('hex')}`;
  await withAdmin(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const dataSource = await new DataSource(dataSourceOptions(url.toString())).initialize();
  try {
    await runMigrations(dataSource);
  } finally {
    await dataSource.destroy();
  }
  await runWorkerMigrations({ connectionString: url.toString(), logger: new Logger(() => () => undefined) });
  return name;
}

/**
 * Where the throwaway server keeps its files: the memory-backed /dev/shm when it has room (1 GiB;
 * a container's is often 64 MiB), which spares the disk's journal the many databases created and
 * dropped in a run (the server runs with fsync off: nothing needs to survive it), else the temp folder.
 */
async function scratchFolder(): Promise<string> {
  const stats = await statfs('/dev/shm').catch(() => null);
  return stats && stats.bavail * stats.bsize >= 2 ** 30 ? '/dev/shm' : tmpdir();
}
