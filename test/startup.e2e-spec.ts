import pg from 'pg';
import request from 'supertest';
import { MIGRATIONS } from '../src/database/data-source-options.js';
import { createConfirmedSession, mobi, othr, uniqueEmail } from './support/factories.js';
import { copyServerBuild, connectionRefused, startServer, type ServerBuild, type ServerProcess } from './support/server-process.js';
import { SmtpSink } from './support/smtp-sink.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { createTestApp, testServerEnv, type TestApp } from './support/test-app.js';

describe('startup: several replicas at once on one empty database', () => {
  let db: TestDatabase;
  let apps: TestApp[] = [];
  beforeEach(async () => {
    db = await createTestDatabase();
    apps = [];
  });
  afterEach(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await db.drop();
  });

  /** Starts `count` apps on `db` at once; all must come up. */
  async function startReplicas(count: number, env: Record<string, string> = {}): Promise<void> {
    const results = await Promise.allSettled(Array.from({ length: count }, () => createTestApp(env, { database: db })));
    apps = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason?.stack ?? r.reason)] : []));
    expect(failures).toEqual([]);
  }

  async function expectMigratedOnce(): Promise<void> {
    const rows = await db.query<{ name: string }>(`SELECT name FROM migrations ORDER BY id`);
    expect(rows.map((r) => r.name).sort()).toEqual(MIGRATIONS.map((m) => m.name).sort());
    const [{ count }] = await db.query<{ count: number }>(`SELECT count(*)::int AS count FROM migrations`);
    expect(count).toBe(MIGRATIONS.length);
  }

  it('two instances started together both come up, and the migrations are applied exactly once', async () => {
    await startReplicas(2);
    await expectMigratedOnce();
    // Both serve, on the one schema: a login started on one is confirmed through the other.
    for (const app of apps) await request(app.http).get('/health/ready').expect(200);
    const [a, b] = apps;
    const email = uniqueEmail('replicas');
    const started = await request(a.http).post('/sessions?mode=email').send(othr(email)).expect(201);
    const code = await Promise.any([a.smtp.codeFor(email), b.smtp.codeFor(email)]);
    await request(b.http)
      .patch(`/sessions/${started.body.uuid}`)
      .set('Authorization', `Bearer ${started.body.token}`)
      .send({ otp_code: code })
      .expect(200);
    await request(a.http).get('/sessions/current').set('Authorization', `Bearer ${started.body.token}`).expect(200);
  });

  it('four instances started together all come up, and the migrations are applied exactly once', async () => {
    // Any replica's worker may send a login's mail (all of them LISTEN for new jobs): one SMTP server for all.
    const smtp = await SmtpSink.start();
    try {
      await startReplicas(4, { SMTP_URL: smtp.url });
      await expectMigratedOnce();
      for (const app of apps) await createConfirmedSession({ ...app, smtp }, mobi(uniqueEmail('replicas4')));
    } finally {
      await Promise.all(apps.map((app) => app.close()));
      apps = [];
      await smtp.stop();
    }
  });

  it('an instance started on an up-to-date database applies nothing', async () => {
    await startReplicas(1);
    const before = await db.query(`SELECT id, name, timestamp FROM migrations ORDER BY id`);
    const second = await createTestApp({}, { database: db });
    apps.push(second);
    expect(await db.query(`SELECT id, name, timestamp FROM migrations ORDER BY id`)).toEqual(before);
  });
});

describe('graceful shutdown of the real server process (node dist/main.js)', () => {
  const IN_FLIGHT = 20;
  let build: ServerBuild;
  let db: TestDatabase;
  let smtp: SmtpSink;
  let server: ServerProcess | undefined;
  let locker: pg.Client | undefined;

  beforeAll(async () => {
    build = await copyServerBuild();
    db = await createTestDatabase();
    smtp = await SmtpSink.start();
  }, 120_000);

  afterAll(async () => {
    await locker?.end().catch(() => undefined);
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    await smtp?.stop();
    await db?.drop();
    await build?.remove();
  }, 60_000);

  it('on SIGTERM: refuses new connections, lets the requests in flight finish (201), exits 0', async () => {
    server = await startServer(build, testServerEnv(db, smtp, { SHUTDOWN_GRACE_PERIOD: '10' }));
    const { baseUrl, port } = server;

    // Keep requests in flight: a lock that lets sessions be read but not inserted, held by the test.
    locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE sessions IN SHARE MODE');

    const emails = Array.from({ length: IN_FLIGHT }, () => uniqueEmail('drain'));
    let finished = 0;
    const inFlight = emails.map((email) =>
      fetch(`${baseUrl}/sessions?mode=email`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(othr(email)),
      }).then(async (res) => {
        finished += 1;
        return { status: res.status, body: (await res.json()) as Record<string, unknown>, connection: res.headers.get('connection') };
      }),
    );
    // All of them are inside the server, blocked on the lock.
    const waiting = async () =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`))[0].n;
    for (const deadline = Date.now() + 10_000; (await waiting()) < IN_FLIGHT && Date.now() < deadline; ) {
      await new Promise((wake) => setTimeout(wake, 50));
    }
    expect(await waiting()).toBe(IN_FLIGHT);
    expect(finished).toBe(0);

    const signalledAt = Date.now();
    server.child.kill('SIGTERM');

    // New connections are refused promptly, while the requests in flight are still running.
    let refused = false;
    for (const deadline = Date.now() + 3_000; !refused && Date.now() < deadline; ) {
      refused = await connectionRefused(port);
      if (!refused) await new Promise((wake) => setTimeout(wake, 20));
    }
    expect(refused).toBe(true);
    expect(finished).toBe(0);
    expect(server.child.exitCode).toBeNull();
    await expect(fetch(`${baseUrl}/health/live`)).rejects.toThrow();

    // Let them through; the mail worker then has slow SMTP sends in progress while the app shuts down.
    smtp.delayMs = 1_000;
    await new Promise((wake) => setTimeout(wake, 300));
    expect(finished).toBe(0);
    await locker.query('COMMIT');

    const responses = await Promise.all(inFlight);
    expect(responses.map((r) => r.status)).toEqual(Array(IN_FLIGHT).fill(201));
    for (const [i, res] of responses.entries()) {
      expect(res.body).toMatchObject({ status: 'pending', user: { email: emails[i] }, token: expect.any(String) });
    }

    const exit = await server.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(10_000);
    expect(server.output()).toContain('SIGTERM: shutting down');
    expect(server.output()).not.toContain('Grace period over');
    // The last lines say how it ended, so an operator reading the log knows the stop was clean.
    expect(server.output()).toMatch(/Closed in \d+ ms: no request open, mail worker stopped, database connections closed/);
    expect(server.output()).toContain('Shutdown complete: exit 0');

    // Every session was stored; every mail was either sent (the sends in progress were let finish:
    // the SMTP server has no mail half received) or is still in the outbox for another replica.
    const [{ sessions }] = await db.query<{ sessions: number }>(`SELECT count(*)::int AS sessions FROM sessions`);
    expect(sessions).toBe(IN_FLIGHT);
    const jobs = await db.query<{ to: string }>(`SELECT payload->>'to' AS to FROM mail_outbox`);
    expect(smtp.pending).toBe(0);
    const queued = jobs.map((job) => job.to);
    const delivered = smtp.messages.map((m) => m.to);
    for (const email of emails) expect([...delivered, ...queued]).toContain(email);
  }, 60_000);
});
