import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadAppConfig } from '../config/app-config.js';
import { loadDotEnv } from '../config/dotenv.js';
import { dataSourceOptions } from './data-source-options.js';
import { resolveDatabaseUrl } from './database-url.js';
import { runMigrations } from './run-migrations.js';

// `npm run migration:run`: applies pending migrations to the configured database and exits.
loadDotEnv();
const config = loadAppConfig(process.env);
const { url, embedded } = await resolveDatabaseUrl(config.database);
const dataSource = await new DataSource(dataSourceOptions(url)).initialize();
try {
  const applied = await runMigrations(dataSource);
  process.stdout.write(applied.length ? `Applied: ${applied.join(', ')}\n` : 'Schema is up to date.\n');
} finally {
  await dataSource.destroy();
  await embedded?.stop();
}
