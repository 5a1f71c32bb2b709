import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/database/embedded-postgres.js';
import { confirm, createConfirmedSession, createPendingSession, errorBody, mobi, othr, startLogin, uniqueEmail } from './support/factories.js';
import { LogCapture } from './support/observability.js';
import { connectTestDatabase } from './support/test-database.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/** Longest a request may take while PostgreSQL is down: it must fail fast, not hang. */
const OUTAGE_ANSWER_MS = 10_000;

/** Runs a request and returns its response and how long it took. */
async function timed(call: () => request.Test): Promise<{ res: request.Response; ms: number }> {
  const started = Date.now();
  const res = await call();
  return { res, ms: Date.now() - started };
}

/** Every process of the PostgreSQL server whose data is in `dataDir` (postmaster first). */
async function serverProcesses(dataDir: string): Promise<number[]> {
  const postmaster = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' }).trim().split('\n').map(Number);
  } catch {
    // pgrep exits 1 when there are none.
  }
  return [postmaster, ...children.filter((pid) => pid > 0)];
}

/**
 * A PostgreSQL outage, on a server of this file's own (the run's shared server must stay up):
 * while it is down every database-backed request answers 503 `database_unavailable` quickly;
 * once it is back, the same application process serves again and nothing stored was lost.
 */
describe('database outage: 503 database_unavailable, then recovery without restarting the app', () => {
  let dataDir: string;
  let server: EmbeddedDatabase;
  let port: number;
  let t: TestApp;
  const logs = new LogCapture();

  // State carried from one phase to the next.
  let confirmed: Awaited<ReturnType<typeof createConfirmedSession>>;
  let pending: Awaited<ReturnType<typeof createPendingSession>>;
  /** Processes stopped with SIGSTOP, to resume even if a test fails. */
  let frozen: number[] = [];
  const thaw = () => {
    for (const pid of frozen) process.kill(pid, 'SIGCONT');
    frozen = [];
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'sessions-outage-pg-'));
    server = await startEmbeddedPostgres({ dataDir, persistent: true });
    port = server.port;
    t = await createTestApp({ LOG_LEVEL: 'warn' }, { database: connectTestDatabase(server.url), logStream: logs });
  }, 120_000);

  afterAll(async () => {
    thaw();
    await t?.close();
    await t?.db.drop();
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('before the outage: a confirmed session authenticates and a pending one waits for its code', async () => {
    confirmed = await createConfirmedSession(t, mobi(uniqueEmail('outage-confirmed')));
    pending = await createPendingSession(t, othr(uniqueEmail('outage-pending')));
    const res = await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${confirmed.token}`).expect(200);
    expect(res.body.uuid).toBe(confirmed.uuid);
    await request(t.http).get('/health/ready').expect(200);
  });

  describe('while PostgreSQL is down', () => {
    beforeAll(async () => {
      await server.stop();
    }, 60_000);

    it('POST /sessions answers 503 database_unavailable with Retry-After, quickly', async () => {
      const { res, ms } = await timed(() => startLogin(t, mobi(uniqueEmail('outage-new'))));
      expect(res.status).toBe(503);
      expect(res.body).toEqual(errorBody(503, 'database_unavailable'));
      expect(res.headers['retry-after']).toBe('5');
      expect(ms).toBeLessThan(OUTAGE_ANSWER_MS);
    });

    it('GET /sessions/current answers 503 database_unavailable, not 401 (the token is not judged invalid)', async () => {
      const { res, ms } = await timed(() =>
        request(t.http).get('/sessions/current').set('Authorization', `Bearer ${confirmed.token}`),
      );
      expect(res.status).toBe(503);
      expect(res.body).toEqual(errorBody(503, 'database_unavailable'));
      expect(res.headers['retry-after']).toBe('5');
      expect(ms).toBeLessThan(OUTAGE_ANSWER_MS);
    });

    it('PATCH /sessions/{uuid} answers 503 and uses no attempt', async () => {
      const { res, ms } = await timed(() => confirm(t, pending.uuid, pending.token, pending.code));
      expect(res.status).toBe(503);
      expect(res.body).toEqual(errorBody(503, 'database_unavailable'));
      expect(ms).toBeLessThan(OUTAGE_ANSWER_MS);
    });

    it('many concurrent requests all answer 503 quickly: none hangs, none is a 500', async () => {
      const started = Date.now();
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          i % 2 === 0
            ? request(t.http).get('/sessions/current').set('Authorization', `Bearer ${confirmed.token}`)
            : startLogin(t, othr(uniqueEmail('outage-burst'))),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(30).fill(503));
      for (const res of responses) expect(res.body.code).toBe('database_unavailable');
      expect(Date.now() - started).toBeLessThan(OUTAGE_ANSWER_MS);
    });

    it('GET /health/ready answers 503 database_unavailable naming the failed check; /health/live stays 200', async () => {
      const { res, ms } = await timed(() => request(t.http).get('/health/ready'));
      expect(res.status).toBe(503);
      expect(res.body).toEqual(errorBody(503, 'database_unavailable', { details: { database: expect.objectContaining({ status: 'down' }) } }));
      expect(res.headers['retry-after']).toBe('5');
      expect(ms).toBeLessThan(OUTAGE_ANSWER_MS);
      await request(t.http).get('/health/live').expect(200, { status: 'ok' });
    });

    it('GET /metrics still answers', async () => {
      const { res, ms } = await timed(() => request(t.http).get('/metrics'));
      expect(res.status).toBe(200);
      expect(res.text).toContain('http_request_duration_seconds_count');
      expect(ms).toBeLessThan(OUTAGE_ANSWER_MS);
    });
  });

  describe('once PostgreSQL is back (same port, same data), without restarting the app', () => {
    beforeAll(async () => {
      server = await startEmbeddedPostgres({ dataDir, persistent: true, port });
      expect(server.port).toBe(port);
    }, 60_000);

    it('serves again within 10 s', async () => {
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await request(t.http).get('/health/ready')).status;
        if (status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(status).toBe(200);
    });

    it('the session confirmed before the outage still authenticates', async () => {
      const res = await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${confirmed.token}`).expect(200);
      expect(res.body).toMatchObject({ uuid: confirmed.uuid, status: 'confirmed' });
    });

    it('the session pending before the outage confirms with its code, its attempts untouched', async () => {
      const [row] = await t.db.query<{ status: string; otp_attempts_left: number }>(
        `SELECT status, otp_attempts_left FROM sessions WHERE id = $1`,
        [pending.uuid.slice(4)],
      );
      expect(row).toEqual({ status: 'pending', otp_attempts_left: 5 });
      const res = await confirm(t, pending.uuid, pending.token, pending.code).expect(200);
      expect(res.body.status).toBe('confirmed');
    });

    it('a new login works end to end (its code is mailed) and nothing was created during the outage', async () => {
      const email = uniqueEmail('outage-after');
      const session = await createConfirmedSession(t, mobi(email, randomUUID()));
      expect(session.body.status).toBe('confirmed');
      const [{ users }] = await t.db.query<{ users: number }>(
        `SELECT count(*)::int AS users FROM users WHERE email LIKE 'outage-new%' OR email LIKE 'outage-burst%'`,
      );
      expect(users).toBe(0);
    });

  });

  describe('while PostgreSQL hangs (all its processes stopped: accepts TCP, never answers)', () => {
    beforeAll(async () => {
      // Connections in the pool first, so that requests get a live-looking connection that hangs.
      await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${confirmed.token}`).expect(200);
      frozen = await serverProcesses(dataDir);
      expect(frozen.length).toBeGreaterThan(1);
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    });

    it('requests on pooled connections answer 503 database_unavailable within 10 s instead of hanging', async () => {
      const calls = [
        () => request(t.http).get('/sessions/current').set('Authorization', `Bearer ${confirmed.token}`),
        () => startLogin(t, othr(uniqueEmail('outage-hung'))),
        () => request(t.http).get('/sessions').set('Authorization', `Bearer ${confirmed.token}`),
      ];
      const results = await Promise.all(calls.map((call) => timed(() => call().timeout(30_000))));
      for (const { res, ms } of results) {
        expect(res.status).toBe(503);
        expect(res.body).toEqual(errorBody(503, 'database_unavailable'));
        expect(ms).toBeLessThan(OUTAGE_ANSWER_MS);
      }
    }, 40_000);

    // A request queued for a pool connection (up to connectionTimeoutMillis, 5 s) may get one that was just
    // freed and then wait for its query's timeout (5 s): 10 s at worst, plus scheduling slack.
    it('more concurrent requests than the pool holds all answer 503 within 12 s', async () => {
      const started = Date.now();
      const responses = await Promise.all(
        Array.from({ length: 25 }, () =>
          request(t.http).get('/sessions/current').set('Authorization', `Bearer ${confirmed.token}`).timeout(30_000),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(25).fill(503));
      for (const res of responses) expect(res.body.code).toBe('database_unavailable');
      expect(Date.now() - started).toBeLessThan(12_000);
    }, 40_000);

    it('GET /health/ready answers 503 within its 2 s check timeout', async () => {
      const { res, ms } = await timed(() => request(t.http).get('/health/ready').timeout(30_000));
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('database_unavailable');
      expect(ms).toBeLessThan(5_000);
    });

    it('serves again within 10 s once PostgreSQL resumes', async () => {
      thaw();
      const deadline = Date.now() + 10_000;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${confirmed.token}`)).status;
        if (status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(status).toBe(200);
      await createConfirmedSession(t, mobi(uniqueEmail('outage-after-hang')));
    }, 20_000);
  });

  describe('overall', () => {
    it('answered no request with a 500 and logged no unhandled error', () => {
      expect(logs.entries.filter((e) => e.res?.statusCode === 500)).toEqual([]);
      expect(logs.raw.filter((line) => line.includes('Unhandled error'))).toEqual([]);
    });
  });
});
