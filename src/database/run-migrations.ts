import type { DataSource } from 'typeorm';

/** Arbitrary constant naming this service's migration lock among PostgreSQL advisory locks. */
const MIGRATION_LOCK_KEY = 4_130_817_203;

/**
 * Applies pending migrations while holding a PostgreSQL advisory lock, so that several replicas
 * starting at once take turns instead of racing on the schema.
 * @returns the names of the migrations applied by this call
 */
export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const lock = dataSource.createQueryRunner();
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const applied = await dataSource.runMigrations({ transaction: 'all' });
    return applied.map((m) => m.name);
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await lock.release();
  }
}
