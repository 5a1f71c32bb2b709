import { createHash } from 'node:crypto';
import pg from 'pg';

/**
 * A pg `Client` class, for the pool's documented `Client` option (node-postgres "Pool" docs; TypeORM
 * hands `extra` to `new pg.Pool(...)`), that runs each of `texts` as a named (prepared) statement:
 * PostgreSQL then parses and plans it once per connection instead of at every call, about half of
 * its work for the short statements of the hot paths (docs/performance.md). Every other query is
 * passed on unchanged. Callers keep using TypeORM's documented `query(text, parameters)`, so its
 * logging, error wrapping and transactions apply as for any query.
 *
 * Only for constant texts (values always go in parameters): one text, one statement name, on every
 * connection. The name is derived from the text, so equal texts share one prepared statement.
 */
export function namedStatementClient(texts: Iterable<string>): typeof pg.Client {
  const names = new Map<string, string>();
  for (const text of texts) names.set(text, statementName(text));

  return class NamedStatementClient extends pg.Client {
    // pg's query() has many overloads: TypeORM calls (text, values), pg.Pool (text, values, callback).
    override query(...args: unknown[]): never {
      const [text, values, callback] = args;
      const name = typeof text === 'string' ? names.get(text) : undefined;
      const query = super.query as (...callArgs: unknown[]) => never;
      if (name === undefined || !Array.isArray(values)) return query.apply(this, args);
      const named = { name, text, values };
      return typeof callback === 'function' ? query.call(this, named, callback) : query.call(this, named);
    }
  };
}

/** `s_` and 20 hex digits of the text's SHA-1: short, stable across processes and replicas. */
export function statementName(text: string): string {
  return `s_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
}
