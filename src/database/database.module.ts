import { Injectable, Logger, Module } from '@nestjs/common';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { Logger as PinoBackedLogger } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { dataSourceOptions } from './data-source-options.js';
import { resolveDatabaseUrl } from './database-url.js';
import type { EmbeddedDatabase } from './embedded-postgres.js';
import { runMigrations } from './run-migrations.js';
import { waitForDatabase } from './wait-for-database.js';

/**
 * Owns the embedded PostgreSQL, when one was started. `main.ts` stops it after `app.close()`, once
 * every pool (TypeORM's, the mail queue's) is closed: stopping it from a shutdown hook would race
 * the other modules' hooks.
 */
@Injectable()
export class EmbeddedDatabaseHolder {
  embedded: EmbeddedDatabase | null = null;

  async stop(): Promise<void> {
    const embedded = this.embedded;
    this.embedded = null;
    await embedded?.stop();
  }
}

let startedEmbedded: EmbeddedDatabase | null = null;
const logger = new Logger('Database');

/**
 * A query PostgreSQL has not answered after this long fails (503 `database_unavailable`) instead of
 * holding its request forever when the server hangs or the network drops packets. Not applied to
 * migrations, which may legitimately take long (or wait for another replica's).
 */
const QUERY_TIMEOUT_MS = 5_000;

/**
 * TypeORM on PostgreSQL: the configured server, or the embedded one in development. Pending
 * migrations run at start, under an advisory lock (several replicas may start at once).
 */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfig, PinoBackedLogger],
      useFactory: async (config: AppConfig, pino: PinoBackedLogger) => {
        const { url, embedded } = await resolveDatabaseUrl(config.database, (line) => logger.verbose(line));
        // Straight to pino (Nest's own logger is still buffering): which setting fails, and why.
        if (!embedded) {
          await waitForDatabase(url, config.database, {
            warn: (line) => pino.warn(line, 'Database'),
            error: (line) => pino.error(line, 'Database'),
          });
        }
        if (embedded) {
          startedEmbedded = embedded;
          if (embedded.leftoverStopped !== null) {
            logger.warn(`Stopped the embedded PostgreSQL that an earlier run, killed before it could stop it, left running (PID ${embedded.leftoverStopped})`);
          }
          if (embedded.portTaken !== null) {
            logger.warn(
              `Port ${embedded.portTaken} (EMBEDDED_DB_PORT) is taken by another program: the embedded PostgreSQL uses port ${embedded.port} for this run`,
            );
          }
          logger.log(
            `Embedded PostgreSQL listening on 127.0.0.1:${embedded.port} ` +
              `(user postgres, password postgres, database postgres; data in ${config.database.kind === 'embedded' ? config.database.dataDir : ''})`,
          );
        }
        const options = dataSourceOptions(url);
        // waitForDatabase did the retrying, with readable lines; no second round of TypeORM's.
        return { ...options, extra: { ...options.extra, query_timeout: QUERY_TIMEOUT_MS }, toRetry: () => false };
      },
      dataSourceFactory: async (options) => {
        const migrator = await new DataSource(dataSourceOptions((options as { url: string }).url)).initialize();
        try {
          const applied = await runMigrations(migrator);
          if (applied.length > 0) logger.log(`Applied migrations: ${applied.join(', ')}`);
        } finally {
          await migrator.destroy();
        }
        return new DataSource(options!).initialize();
      },
    }),
  ],
  providers: [
    {
      provide: EmbeddedDatabaseHolder,
      inject: [getDataSourceToken()], // created after the data source, hence after the server started
      useFactory: () => {
        const holder = new EmbeddedDatabaseHolder();
        holder.embedded = startedEmbedded;
        startedEmbedded = null;
        return holder;
      },
    },
  ],
})
export class DatabaseModule {}
