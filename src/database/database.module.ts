import { Inject, Injectable, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { dataSourceOptions } from './data-source-options.js';
import { resolveDatabaseUrl } from './database-url.js';
import type { EmbeddedDatabase } from './embedded-postgres.js';
import { runMigrations } from './run-migrations.js';

/** Owns the embedded PostgreSQL, when one was started, and stops it after the pool is closed. */
@Injectable()
export class EmbeddedDatabaseHolder implements OnApplicationShutdown {
  embedded: EmbeddedDatabase | null = null;

  constructor(@Inject(getDataSourceToken()) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (!this.embedded) return;
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    await this.embedded.stop();
    this.embedded = null;
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
      inject: [AppConfig],
      useFactory: async (config: AppConfig) => {
        const { url, embedded } = await resolveDatabaseUrl(config.database, (line) => logger.verbose(line));
        if (embedded) {
          startedEmbedded = embedded;
          logger.log(
            `Embedded PostgreSQL listening on 127.0.0.1:${embedded.port} ` +
              `(user postgres, password postgres, database postgres; data in ${config.database.kind === 'embedded' ? config.database.dataDir : ''})`,
          );
        }
        const options = dataSourceOptions(url);
        return { ...options, extra: { ...options.extra, query_timeout: QUERY_TIMEOUT_MS } };
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
      inject: [getDataSourceToken()],
      useFactory: (dataSource: DataSource) => {
        const holder = new EmbeddedDatabaseHolder(dataSource);
        holder.embedded = startedEmbedded;
        startedEmbedded = null;
        return holder;
      },
    },
  ],
})
export class DatabaseModule {}
