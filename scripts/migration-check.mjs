// Schema drift check: `npm run migration:check` (builds first). Applies every migration to a new,
// empty database, then asks TypeORM's own CLI whether the entities describe that schema
// (`typeorm migration:generate --check`: exit 1 when it would generate a migration). Run in CI.
//
// MIGRATION_CHECK_DATABASE_URL: a PostgreSQL server (any database on it) where a throwaway
// database is created and dropped; without it, an embedded PostgreSQL is started in a temp folder.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const DATA_SOURCE = 'dist/database/data-source.js';
const TYPEORM_CLI = 'node_modules/typeorm/cli.js';

let embedded = null;
let dataDir = null;
let adminUrl = process.env.MIGRATION_CHECK_DATABASE_URL;
if (!adminUrl) {
  const { startEmbeddedPostgres } = await import('../dist/database/embedded-postgres.js');
  dataDir = await mkdtemp(join(tmpdir(), 'migration-check-pg-'));
  embedded = await startEmbeddedPostgres({ dataDir, persistent: false, serverFlags: ['-c', 'fsync=off'] });
  adminUrl = embedded.url;
}

const name = `migration_check_${randomBytes(6).toString('hex')}`;
const admin = async (sql) => {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
};

let status = 1;
await admin(`CREATE DATABASE ${name}`);
try {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const typeorm = (...args) =>
    spawnSync(process.execPath, [TYPEORM_CLI, ...args, '-d', DATA_SOURCE], {
      stdio: 'inherit',
      env: { ...process.env, DATABASE_URL: url.toString() },
    }).status;
  status = typeorm('migration:run');
  if (status === 0) {
    status = typeorm('migration:generate', 'src/database/migrations/SchemaDrift', '--check');
    if (status !== 0) {
      process.stderr.write(
        'Schema drift: the entities (src/sessions/entities) and the migrations disagree. Describe the ' +
          'schema on the entities, or add the migration above.\n',
      );
    }
  }
} finally {
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await embedded?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}
process.exit(status ?? 1);
