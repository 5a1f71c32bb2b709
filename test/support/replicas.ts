import { createTestApp, type TestApp } from './test-app.js';

/**
 * Two instances of the app on ONE database, as two replicas behind a load balancer: `a` owns the
 * database (created for it), `b` runs on the same one. Both send their mail to `a`'s SMTP server
 * (the mail of a login started on one replica may be sent by either replica's worker), and
 * `b`'s clock is set to `a`'s. Move both clocks with `advance`.
 * @param env overrides for both instances (e.g. `OTP_MAX_ATTEMPTS`, `REDIS_URL`)
 */
export interface ReplicaPair {
  a: TestApp;
  b: TestApp;
  /** Both apps, `[a, b]`: `pick(i)` alternates between them. */
  pick(i: number): TestApp;
  /** Moves both clocks by `seconds`. */
  advance(seconds: number): void;
  close(): Promise<void>;
}

export async function createReplicaPair(env: Record<string, string> = {}): Promise<ReplicaPair> {
  const a = await createTestApp(env);
  let b: TestApp;
  try {
    b = await createSecondReplica(a, env);
  } catch (error) {
    await a.close();
    throw error;
  }
  return {
    a,
    b,
    pick: (i) => (i % 2 === 0 ? a : b),
    advance: (seconds) => {
      a.clock.advance(seconds);
      b.clock.advance(seconds);
    },
    close: async () => {
      await b.close();
      await a.close();
    },
  };
}

/**
 * One more instance of the app on `primary`'s database, mailing to `primary`'s SMTP server, with its
 * clock set to `primary`'s. Its `close()` leaves the database to `primary`.
 */
export async function createSecondReplica(primary: TestApp, env: Record<string, string> = {}): Promise<TestApp> {
  const replica = await createTestApp({ ...env, SMTP_URL: primary.smtp.url }, { database: primary.db });
  replica.clock.advance((primary.clock.now().getTime() - replica.clock.now().getTime()) / 1000);
  return replica;
}
