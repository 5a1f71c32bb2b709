import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/** A database private to one test file (or test). */
export interface TestDatabase {
  url: string;
  /** Runs SQL against it (assertions on rows). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

/** A fresh, empty database: the application migrates it on start, as in production. */
export function createTestDatabase(): Promise<TestDatabase> {
  return newDatabase('');
}

/**
 * A fresh database with the schema already in place: a copy of the run's template database, which
 * the global setup migrated once (this service's migrations and graphile-worker's schema), so that
 * the application finds nothing to apply on start. For tests of anything but the first start.
 */
export function createMigratedTestDatabase(): Promise<TestDatabase> {
  return newDatabase(` TEMPLATE ${inject('templateDatabase')}`);
}

async function newDatabase(template: string): Promise<TestDatabase> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = `sessions_test_${randomBytes(6).toString('hex')}`;
  await withAdmin(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}${template}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  // pool.end() resolves before its connections have closed; the DROP ... WITH (FORCE) of drop()
  // then terminates them, and without a listener that error would be thrown in whatever test runs
  // next in this worker ("Unhandled error ... terminating connection due to administrator command").
  pool.on('error', () => undefined);
  return {
    url: url.toString(),
    query: async (sql, params) => (await pool.query(sql, params)).rows,
    drop: async () => {
      await pool.end();
      await withAdmin(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** Runs `work` on a connection of its own to `url`, closed afterwards. */
export async function withAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * A TestDatabase for an existing database (e.g. on a dedicated embedded server) that this run
 * did not create: `drop()` only closes the connections. Idle connections that the server drops
 * (restart, outage) are discarded instead of crashing the test process.
 */
export function connectTestDatabase(url: string): TestDatabase {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined);
  return {
    url,
    query: async (sql, params) => (await pool.query(sql, params)).rows,
    drop: () => pool.end(),
  };
}
