import type { DatabaseTarget } from '../config/app-config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-postgres.js';

/**
 * Resolves the configured database to a connection URL, starting the embedded PostgreSQL when no
 * database is configured (development only; production config requires one), on the configured
 * port (EMBEDDED_DB_PORT) or, when another program holds it, on a free one (`embedded.portTaken`).
 */
export async function resolveDatabaseUrl(
  target: DatabaseTarget,
  onEmbeddedLog?: (line: string) => void,
): Promise<{ url: string; embedded: EmbeddedDatabase | null }> {
  switch (target.kind) {
    case 'url':
      return { url: target.url, embedded: null };
    case 'parts': {
      const auth = `${encodeURIComponent(target.username)}:${encodeURIComponent(target.password)}`;
      return { url: `postgres://${auth}@${target.host}:${target.port}/${encodeURIComponent(target.database)}`, embedded: null };
    }
    case 'embedded': {
      const embedded = await startEmbeddedPostgres({ dataDir: target.dataDir, preferredPort: target.port, onLog: onEmbeddedLog });
      return { url: embedded.url, embedded };
    }
  }
}
