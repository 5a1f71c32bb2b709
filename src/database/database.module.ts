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
        return dataSourceOptions(url);
      },
      dataSourceFactory: async (options) => {
        const dataSource = await new DataSource(options!).initialize();
        const applied = await runMigrations(dataSource);
        if (applied.length > 0) logger.log(`Applied migrations: ${applied.join(', ')}`);
        return dataSource;
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
