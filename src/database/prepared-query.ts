import { createHash } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';

/** What a statement returned: its rows and, for INSERT/UPDATE/DELETE, how many rows it touched. */
export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

interface PgQueryable {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/**
 * Runs `text` as a named (prepared) statement, so PostgreSQL parses and plans it once per
 * connection instead of at every call (about half the server's work for the short statements of
 * the hot paths; see README "Performance"). Inside a transaction it runs on the transaction's
 * connection, otherwise on a pooled one. The name is derived from the text: one text, one
 * statement, on every connection. Only for constant SQL texts (values go in `values`).
 */
export async function preparedQuery<T>(
  target: EntityManager | DataSource,
  text: string,
  values: unknown[],
): Promise<QueryResult<T>> {
  const client = await connectionOf(target);
  const result = await client.query({ name: statementName(text), text, values });
  return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
}

const names = new Map<string, string>();

function statementName(text: string): string {
  let name = names.get(text);
  if (!name) {
    name = `s_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    names.set(text, name);
  }
  return name;
}

async function connectionOf(target: EntityManager | DataSource): Promise<PgQueryable> {
  const runner = 'queryRunner' in target ? target.queryRunner : undefined;
  // A transaction's EntityManager carries its query runner, whose connect() returns its pg client.
  if (runner) return (runner as unknown as { connect(): Promise<PgQueryable> }).connect();
  // Otherwise TypeORM's PostgreSQL driver keeps its pg.Pool as `master`.
  const dataSource = 'connection' in target ? target.connection : target;
  return (dataSource.driver as unknown as { master: PgQueryable }).master;
}
