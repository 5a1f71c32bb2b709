/**
 * A start-up failure that one sentence explains (a port in use, a database setting that does not
 * work, an embedded PostgreSQL that cannot run here): `main.ts` prints its message alone, without
 * a stack trace, and exits 1.
 */
export class StartupError extends Error {
  override name = 'StartupError';

  /** @param logged true when the message already went to the log: nothing more is printed */
  constructor(
    message: string,
    readonly logged = false,
  ) {
    super(message);
  }
}
