import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { Redis } from 'ioredis';
import request from 'supertest';
import {
  confirm,
  countRows,
  createConfirmedSession,
  createPendingSession,
  errorBody,
  mailSettled,
  mobi,
  othr,
  sessionRow,
  startLogin,
  uniqueEmail,
  wrongCode,
} from './support/factories.js';
import { connectTestRedis, rateLimitKey, TEST_REDIS_URL, uniqueClientIp } from './support/redis.js';
import { createReplicaPair, type ReplicaPair } from './support/replicas.js';
import { createTestApp, type TestApp } from './support/test-app.js';
import { createMigratedTestDatabase, type TestDatabase } from './support/test-database.js';

/**
 * Abuse resistance (SPEC "Security rules"): the per-IP request limit of the session endpoints
 * (memory, or Redis shared by replicas), which client IP it counts (X-Forwarded-For only with
 * TRUST_PROXY), the per-device / per-email / per-session limits that live in PostgreSQL and hold
 * across two app instances on one database, security headers, CORS, and error bodies that do not
 * tell whether an email address is registered.
 */

// Jest's default of 5 s per test and hook is short for starting two app instances on a busy machine.
vi.setConfig({ testTimeout: 30_000 });

const sesId = () => `ses-${randomUUID()}`;
const unknownToken = () => randomBytes(32).toString('base64url');
const bearer = (token: string) => `Bearer ${token}`;
let vendorCounter = 0;
const vendor = (): string => `7c9e6679-7425-40de-944b-${String(++vendorCounter).padStart(12, '0')}`;

/** One call to each session endpoint; none of them has a side effect except the POST (a new login). */
const SESSION_CALLS: [string, (t: TestApp) => request.Test][] = [
  ['POST /sessions', (t) => startLogin(t, othr(uniqueEmail('rl')))],
  ['PATCH /sessions/{uuid}', (t) => confirm(t, sesId(), unknownToken(), '123456')],
  ['POST /sessions/{uuid}/otp', (t) => request(t.http).post(`/sessions/${sesId()}/otp`).set('Authorization', bearer(unknownToken()))],
  ['DELETE /sessions/{uuid}', (t) => request(t.http).delete(`/sessions/${sesId()}`).set('Authorization', bearer(unknownToken()))],
  ['GET /sessions', (t) => request(t.http).get('/sessions').set('Authorization', bearer(unknownToken()))],
  ['GET /sessions/current', (t) => request(t.http).get('/sessions/current').set('Authorization', bearer(unknownToken()))],
];

/** A request the limit counts (GET /sessions/current with no token: 401 when let through). */
const counted = (t: TestApp, xff?: string) => {
  const call = request(t.http).get('/sessions/current');
  return xff === undefined ? call : call.set('X-Forwarded-For', xff);
};

/**
 * 429 rate_limited with `Retry-After` (whole seconds, 1..`maxRetryAfter`: the per-IP window is a
 * minute) equal to the body's `retry_after`.
 */
function expectRateLimited(res: request.Response, maxRetryAfter = 60): void {
  expect({ status: res.status, body: res.body }).toEqual({
    status: 429,
    body: errorBody(429, 'rate_limited', { retry_after: expect.any(Number) }),
  });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['retry-after']).toMatch(/^\d+$/);
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBe(res.body.retry_after);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(maxRetryAfter);
}

/** Let through by the per-IP limit: any status but 429 (and never a 5xx). */
function expectNotLimited(res: request.Response): void {
  expect({ status: res.status, code: res.body?.code }).not.toEqual({ status: 429, code: 'rate_limited' });
  expect(res.status).not.toBe(429);
  expect(res.status).toBeLessThan(500);
}

/** The draft-7 RateLimit header: `limit=5, remaining=2, reset=60`. */
function rateLimitHeader(res: request.Response): { limit: number; remaining: number; reset: number } {
  const match = /^limit=(\d+), remaining=(\d+), reset=(\d+)$/.exec(res.headers.ratelimit ?? '');
  if (!match) throw new Error(`No RateLimit header in ${JSON.stringify(res.headers)}`);
  return { limit: Number(match[1]), remaining: Number(match[2]), reset: Number(match[3]) };
}

describe('per-IP request limit (RATE_LIMIT_PER_MINUTE), in memory', () => {
  /** One database for the apps of this block; every test starts its own app (a fresh in-memory count). */
  let db: TestDatabase;
  const apps: TestApp[] = [];
  const start = async (env: Record<string, string>) => {
    const app = await createTestApp(env, { database: db });
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    db = await createMigratedTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(() => db.drop());

  it('limit 5: five requests to the session endpoints pass, the 6th of each is 429 rate_limited with Retry-After and RateLimit headers', async () => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '5' });
    const expected = [201, 404, 404, 401, 401];
    for (let i = 0; i < 5; i++) {
      const [name, call] = SESSION_CALLS[i];
      const res = await call(t);
      expect({ name, status: res.status }).toEqual({ name, status: expected[i] });
      expect(res.headers['ratelimit-policy']).toBe('5;w=60');
      expect(rateLimitHeader(res)).toEqual({ limit: 5, remaining: 4 - i, reset: expect.any(Number) });
      expect(res.headers['retry-after']).toBeUndefined();
    }
    await mailSettled(t);
    const rowsBefore = await countRows(t);
    const mailsBefore = t.smtp.messages.length;

    // Every session endpoint is over the limit now, whatever its request.
    for (const [name, call] of SESSION_CALLS) {
      const res = await call(t);
      expect({ name, status: res.status }).toEqual({ name, status: 429 });
      expectRateLimited(res);
      expect(rateLimitHeader(res)).toEqual({ limit: 5, remaining: 0, reset: expect.any(Number) });
      expect(rateLimitHeader(res).reset).toBeLessThanOrEqual(60);
    }
    // The refused login created nothing and sent nothing.
    await mailSettled(t);
    expect(await countRows(t)).toEqual(rowsBefore);
    expect(t.smtp.messages.length).toBe(mailsBefore);
  });

  it('counts per minute: Retry-After and the RateLimit reset say when the window ends', async () => {
    // express-rate-limit's window runs on the real clock (not the app's injected one).
    const t = await start({ RATE_LIMIT_PER_MINUTE: '1' });
    expectNotLimited(await counted(t));
    const refused = await counted(t);
    expectRateLimited(refused);
    expect(Math.abs(Number(refused.headers['retry-after']) - rateLimitHeader(refused).reset)).toBeLessThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(58);
  });

  it('is 60 per minute when RATE_LIMIT_PER_MINUTE is unset', async () => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '' });
    const statuses: number[] = [];
    for (let batch = 0; batch < 6; batch++) {
      const results = await Promise.all(Array.from({ length: 10 }, () => counted(t)));
      statuses.push(...results.map((r) => r.status));
      expect(results[0].headers['ratelimit-policy']).toBe('60;w=60');
    }
    expect(statuses.filter((s) => s === 429)).toEqual([]);
    expectRateLimited(await counted(t));
  });

  it('RATE_LIMIT_PER_MINUTE=0 turns it off: 100 requests, no 429 and no RateLimit header', async () => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '0' });
    const results: request.Response[] = [];
    for (let batch = 0; batch < 10; batch++) {
      results.push(...(await Promise.all([startLogin(t, othr(uniqueEmail('off'))), ...Array.from({ length: 9 }, () => counted(t))])));
    }
    expect(results).toHaveLength(100);
    expect(results.map((r) => r.status).filter((s) => s !== 201 && s !== 401)).toEqual([]);
    expect(results.filter((r) => r.status === 201)).toHaveLength(10);
    for (const res of results) {
      expect(res.headers.ratelimit).toBeUndefined();
      expect(res.headers['ratelimit-policy']).toBeUndefined();
    }
  });

  it('ignores X-Forwarded-For without TRUST_PROXY: a spoofed header per request does not reset the count', async () => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '5' });
    for (let i = 1; i <= 4; i++) expectNotLimited(await counted(t, `203.0.113.${i}`));
    const email = uniqueEmail('xff-ignored');
    const login = await startLogin(t, othr(email)).set('X-Forwarded-For', '203.0.113.5').expect(201);
    expect((await sessionRow(t, login.body.uuid)).client_ip).toMatch(/^(::ffff:)?127\.0\.0\.1$|^::1$/);
    for (const xff of ['203.0.113.6', '198.51.100.7, 203.0.113.6', '::1', 'unknown', '']) {
      expectRateLimited(await counted(t, xff));
    }
    expectRateLimited(await counted(t));
  });

  it.each(['true', '1'])('honours X-Forwarded-For with TRUST_PROXY=%s: each client address has its own count', async (trust) => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '5', TRUST_PROXY: trust });
    for (let i = 0; i < 5; i++) expectNotLimited(await counted(t, '203.0.113.10'));
    expectRateLimited(await counted(t, '203.0.113.10'));
    // Another client behind the same proxy has a count of its own...
    for (let i = 0; i < 5; i++) expectNotLimited(await counted(t, '203.0.113.11'));
    expectRateLimited(await counted(t, '203.0.113.11'));
    // ...and so has the proxy itself (no X-Forwarded-For: the socket address).
    expectNotLimited(await counted(t));
    // The login records the forwarded address as the session's client IP.
    const login = await startLogin(t, othr(uniqueEmail('xff-trusted'))).set('X-Forwarded-For', '203.0.113.12').expect(201);
    expect((await sessionRow(t, login.body.uuid)).client_ip).toBe('203.0.113.12');
  });

  it('TRUST_PROXY=1 believes only the address the one trusted proxy added: spoofing the left of the list does not help', async () => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '5', TRUST_PROXY: '1' });
    for (let i = 0; i < 5; i++) expectNotLimited(await counted(t, `198.51.100.${i + 1}, 203.0.113.20`));
    expectRateLimited(await counted(t, '198.51.100.99, 203.0.113.20'));
    expectRateLimited(await counted(t, '203.0.113.20'));
    expectNotLimited(await counted(t, '203.0.113.20, 203.0.113.21'));
  });

  it('refused bodies count too: 415 answers carry the RateLimit headers and use up the count', async () => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '3' });
    for (let remaining = 2; remaining >= 0; remaining--) {
      const res = await request(t.http).post('/sessions?mode=email').set('Content-Type', 'text/plain').send('hello');
      expect(res.status).toBe(415);
      expect(rateLimitHeader(res).remaining).toBe(remaining);
    }
    expectRateLimited(await startLogin(t, othr(uniqueEmail('after-415'))));
  });

  it('with TRUST_PROXY=1, forwarded values that are not IP addresses are counted as the connection\'s address (no fresh counts)', async () => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '5', TRUST_PROXY: '1' });
    for (let i = 1; i <= 5; i++) expectNotLimited(await counted(t, `not-an-ip-${i}`));
    expectRateLimited(await counted(t, 'not-an-ip-6'));
    expectRateLimited(await counted(t));
  });

  it.each(['garbage', '1.1.1.1:1234', 'x'.repeat(5_000)])(
    'with TRUST_PROXY=1, an X-Forwarded-For of %s is not recorded as the client IP (the connection\'s address is)',
    async (xff) => {
      const t = await start({ RATE_LIMIT_PER_MINUTE: '1000', TRUST_PROXY: '1' });
      const login = await startLogin(t, othr(uniqueEmail('xff-garbage'))).set('X-Forwarded-For', xff).expect(201);
      expect((await sessionRow(t, login.body.uuid)).client_ip).toMatch(/^(::ffff:)?127\.0\.0\.1$|^::1$/);
    },
  );

  it('with TRUST_PROXY=true, all IPv6 addresses of one /56 share a count (no escape by rotating addresses)', async () => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '5', TRUST_PROXY: 'true' });
    for (let i = 1; i <= 5; i++) expectNotLimited(await counted(t, `2001:db8:1:1${i}::${i}`));
    expectRateLimited(await counted(t, '2001:db8:1:ff:ffff::1'));
    expectNotLimited(await counted(t, '2001:db8:1:100::1'));
  });

  it('limits only the session endpoints: health, metrics, docs and unknown routes answer as usual when a client is over the limit', async () => {
    const t = await start({ RATE_LIMIT_PER_MINUTE: '2' });
    expectNotLimited(await counted(t));
    expectNotLimited(await counted(t));
    expectRateLimited(await counted(t));
    for (let i = 0; i < 10; i++) {
      const live = await request(t.http).get('/health/live');
      expect({ status: live.status, body: live.body }).toEqual({ status: 200, body: { status: 'ok' } });
      expect(live.headers.ratelimit).toBeUndefined();
    }
    await request(t.http).get('/health/ready').expect(200);
    await request(t.http).get('/metrics').expect(200);
    await request(t.http).get('/docs-json').expect(200);
    const unknown = await request(t.http).get('/no-such-route');
    expect({ status: unknown.status, body: unknown.body }).toEqual({ status: 404, body: errorBody(404, 'not_found') });
    expectRateLimited(await startLogin(t, othr(uniqueEmail('still-limited'))));
  });

  it('two instances without Redis count separately (documented: the effective limit is N per replica)', async () => {
    const a = await start({ RATE_LIMIT_PER_MINUTE: '5' });
    const b = await start({ RATE_LIMIT_PER_MINUTE: '5' });
    for (let i = 0; i < 5; i++) expectNotLimited(await counted(a));
    expectRateLimited(await counted(a));
    for (let i = 0; i < 5; i++) {
      const res = await counted(b);
      expectNotLimited(res);
      expect(rateLimitHeader(res).remaining).toBe(4 - i);
    }
    expectRateLimited(await counted(b));
  });

  it('a Redis that does not answer lets requests through (the PostgreSQL limits still hold) and never causes a 5xx', async () => {
    const closedPort = await unusedPort();
    const t = await start({ RATE_LIMIT_PER_MINUTE: '2', REDIS_URL: `redis://127.0.0.1:${closedPort}` });
    const results = await Promise.all(Array.from({ length: 5 }, () => counted(t)));
    for (const res of results) expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'unauthorized' });
    // Refused at once, not after the command time-out (500 ms) each: no offline queue.
    const startedAt = Date.now();
    for (let i = 0; i < 5; i++) {
      const res = await counted(t);
      expect(res.status).toBe(401);
      expect(res.headers.ratelimit).toBeUndefined(); // nothing was counted: no count to report
    }
    expect(Date.now() - startedAt).toBeLessThan(1_000);
    const login = await startLogin(t, othr(uniqueEmail('redis-down')));
    expect(login.status).toBe(201);
    await request(t.http).get('/health/live').expect(200);
  });

  it('a Redis that accepts connections but never answers (a hung server, a black-holed network) does not hold requests up', async () => {
    const hung = await hungServer();
    try {
      const t = await start({ RATE_LIMIT_PER_MINUTE: '2', REDIS_URL: `redis://127.0.0.1:${hung.port}` });
      const startedAt = Date.now();
      const results = await Promise.all(Array.from({ length: 4 }, () => counted(t).timeout(8_000)));
      for (const res of results) expect({ status: res.status, code: res.body.code }).toEqual({ status: 401, code: 'unauthorized' });
      const login = await startLogin(t, othr(uniqueEmail('redis-hung'))).timeout(8_000);
      expect(login.status).toBe(201);
      expect(Date.now() - startedAt).toBeLessThan(5_000);
      expect(hung.acceptedConnections()).toBeGreaterThan(0);
    } finally {
      await hung.close();
    }
  });
});

const describeRedis = TEST_REDIS_URL ? describe : describe.skip;
if (!TEST_REDIS_URL) {
  console.log('abuse-limits: the shared (Redis) per-IP limit tests are skipped: set TEST_REDIS_URL=redis://127.0.0.1:6379 to run them.');
}

describeRedis('per-IP request limit shared through Redis (REDIS_URL) by two instances', () => {
  let redis: Redis;
  let pair: ReplicaPair;
  const keys: string[] = [];
  /** A client address of this test alone (X-Forwarded-For, TRUST_PROXY=true), its Redis key cleared. */
  const newClient = async () => {
    const ip = uniqueClientIp();
    keys.push(rateLimitKey(ip));
    await redis.del(rateLimitKey(ip));
    return ip;
  };

  beforeAll(async () => {
    redis = connectTestRedis(TEST_REDIS_URL!);
    pair = await createReplicaPair({ RATE_LIMIT_PER_MINUTE: '5', REDIS_URL: TEST_REDIS_URL!, TRUST_PROXY: 'true' });
  });
  afterAll(async () => {
    await pair?.close();
    if (keys.length > 0) await redis.del(...keys);
    await redis?.quit();
  });

  it('limit 5: 3 requests on A and 3 on B from one client → the 6th is 429, on either instance', async () => {
    const ip = await newClient();
    for (let i = 0; i < 3; i++) {
      const res = await counted(pair.a, ip);
      expectNotLimited(res);
      expect(rateLimitHeader(res).remaining).toBe(4 - i);
    }
    for (let i = 3; i < 5; i++) {
      const res = await counted(pair.b, ip);
      expectNotLimited(res);
      expect(rateLimitHeader(res).remaining).toBe(4 - i);
    }
    expectRateLimited(await counted(pair.b, ip));
    expectRateLimited(await counted(pair.a, ip));
    expectRateLimited(await startLogin(pair.a, othr(uniqueEmail('redis-limited'))).set('X-Forwarded-For', ip));

    // The count lives in Redis under the limiter's prefix, with the window as its expiry.
    expect(Number(await redis.get(rateLimitKey(ip)))).toBe(8);
    const ttl = await redis.pttl(rateLimitKey(ip));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('parallel requests of one client split across A and B: exactly 5 pass', async () => {
    const ip = await newClient();
    const results = await Promise.all(Array.from({ length: 16 }, (_, i) => counted(pair.pick(i), ip)));
    expect(results.filter((r) => r.status !== 429)).toHaveLength(5);
    for (const res of results.filter((r) => r.status === 429)) expectRateLimited(res);
  });

  it('another client is not affected, on either instance', async () => {
    const limited = await newClient();
    const other = await newClient();
    for (let i = 0; i < 5; i++) expectNotLimited(await counted(pair.pick(i), limited));
    expectRateLimited(await counted(pair.a, limited));
    expectNotLimited(await counted(pair.a, other));
    expectNotLimited(await counted(pair.b, other));
    expect(rateLimitHeader(await counted(pair.b, other)).remaining).toBe(2);
  });

  it('Retry-After follows the window kept in Redis', async () => {
    const ip = await newClient();
    for (let i = 0; i < 5; i++) await counted(pair.pick(i), ip);
    await redis.pexpire(rateLimitKey(ip), 20_000); // as if the window had started 40 s ago
    const res = await counted(pair.b, ip);
    expectRateLimited(res);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(19);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(20);
    await redis.del(rateLimitKey(ip)); // the window is over
    expectNotLimited(await counted(pair.a, ip));
  });
});

describe('limits kept in PostgreSQL hold across two instances on one database', () => {
  let pair: ReplicaPair;
  beforeAll(async () => {
    pair = await createReplicaPair({ OTP_MAX_ATTEMPTS: '5', OTP_MAX_SENDS_PER_HOUR: '10', OTP_RESEND_COOLDOWN: '60' });
  });
  afterAll(() => pair?.close());

  const userRows = async (email: string) => {
    const [row] = await pair.a.db.query<Record<'users' | 'devices' | 'sessions' | 'otp_sends', number>>(
      `SELECT (SELECT count(*) FROM users u WHERE u.email = $1)::int AS users,
              (SELECT count(*) FROM devices d JOIN users u ON u.id = d.user_id WHERE u.email = $1)::int AS devices,
              (SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1)::int AS sessions,
              (SELECT count(*) FROM otp_sends o JOIN users u ON u.id = o.user_id WHERE u.email = $1)::int AS otp_sends`,
      [email],
    );
    return row;
  };

  it('per-device cooldown: 10 parallel first logins of one device, split across A and B → exactly one 201, nine 429', async () => {
    const email = uniqueEmail('cooldown-2x');
    const device = mobi(email, vendor());
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => startLogin(pair.pick(i), device)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, ...Array(9).fill(429)]);
    for (const res of results.filter((r) => r.status === 429)) {
      expectRateLimited(res);
      expect(res.body.retry_after).toBeGreaterThanOrEqual(59);
    }
    expect(await userRows(email)).toEqual({ users: 1, devices: 1, sessions: 1, otp_sends: 1 });
  });

  it('per-email hourly cap: 12 parallel logins of one email on 12 devices with cap 10, split across A and B → exactly 10 × 201, 2 × 429', async () => {
    const email = uniqueEmail('cap-2x');
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => startLogin(pair.pick(i), mobi(email, vendor()))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(10);
    expect(results.filter((r) => r.status === 429)).toHaveLength(2);
    for (const res of results.filter((r) => r.status === 429)) {
      expectRateLimited(res, 3600);
      expect(res.body.retry_after).toBeGreaterThan(3500);
    }
    // The refused logins rolled back their device too.
    expect(await userRows(email)).toEqual({ users: 1, devices: 10, sessions: 10, otp_sends: 10 });
    // An 11th device later, on either instance, is still refused.
    expectRateLimited(await startLogin(pair.b, othr(email)), 3600);
    expectRateLimited(await startLogin(pair.a, mobi(email, vendor())), 3600);
  });

  it('resend cooldown: 10 parallel POST /sessions/{uuid}/otp after the cooldown, split across A and B → exactly one 202', async () => {
    const email = uniqueEmail('resend-2x');
    const pending = await createPendingSession(pair.a, mobi(email, vendor()));
    pair.advance(61);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(pair.pick(i).http).post(`/sessions/${pending.uuid}/otp`).set('Authorization', bearer(pending.token)),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([202, ...Array(9).fill(429)]);
    for (const res of results.filter((r) => r.status === 429)) expectRateLimited(res);
    expect(await userRows(email)).toEqual({ users: 1, devices: 1, sessions: 1, otp_sends: 2 });
  });

  it('OTP attempt cap: 30 parallel wrong codes split across A and B with OTP_MAX_ATTEMPTS=5 → exactly 5 otp_invalid', async () => {
    const pending = await createPendingSession(pair.a, mobi(uniqueEmail('attempts-2x'), vendor()));
    const wrong = wrongCode(pending.code);
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => confirm(pair.pick(i), pending.uuid, pending.token, wrong)));
    const invalid = results.filter((r) => r.body.code === 'otp_invalid');
    const exceeded = results.filter((r) => r.body.code === 'otp_attempts_exceeded');
    expect(invalid.map((r) => r.body.attempts_remaining).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(exceeded).toHaveLength(25);
    for (const res of invalid) expect(res.body).toEqual(errorBody(400, 'otp_invalid', { attempts_remaining: res.body.attempts_remaining }));
    for (const res of exceeded) expect(res.body).toEqual(errorBody(400, 'otp_attempts_exceeded'));
    expect(await sessionRow(pair.a, pending.uuid)).toMatchObject({ status: 'expired', otp_attempts_left: 0, otp_hash: null });
    // Even the right code is refused now, on either instance.
    for (const app of [pair.a, pair.b]) {
      const res = await confirm(app, pending.uuid, pending.token, pending.code);
      expect(res.body).toEqual(errorBody(400, 'otp_attempts_exceeded'));
    }
  });

  it('10 parallel confirms with the right code split across A and B: one transition, every answer the same confirmed session', async () => {
    const pending = await createPendingSession(pair.a, mobi(uniqueEmail('confirm-2x'), vendor()));
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => confirm(pair.pick(i), pending.uuid, pending.token, pending.code)));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(new Set(results.map((r) => r.body.confirmed_at)).size).toBe(1);
    expect(await sessionRow(pair.a, pending.uuid)).toMatchObject({ status: 'confirmed', otp_hash: null });
  });
});

describe('security headers (helmet) and CORS', () => {
  let t: TestApp;
  let cors: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
    cors = await createTestApp({ CORS_ORIGINS: 'https://app.example.com, https://admin.example.com/' }, { database: t.db });
  });
  afterAll(async () => {
    await cors?.close();
    await t?.close();
  });

  it.each([
    ['GET /health/live', (app: TestApp) => request(app.http).get('/health/live')],
    ['POST /sessions (201)', (app: TestApp) => startLogin(app, othr(uniqueEmail('helmet')))],
    ['POST /sessions (400)', (app: TestApp) => startLogin(app, { user: {} })],
    ['GET /sessions/current (401)', (app: TestApp) => request(app.http).get('/sessions/current')],
    ['an unknown route (404)', (app: TestApp) => request(app.http).get('/nope')],
    ['a body that is not JSON (415)', (app: TestApp) => request(app.http).post('/sessions?mode=email').set('Content-Type', 'text/plain').send('x')],
  ])('%s carries helmet\'s headers and no X-Powered-By', async (_name, call) => {
    const res = await call(t);
    expect(res.status).toBeLessThan(500);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(res.headers['content-security-policy']).toMatch(/frame-ancestors 'self'/);
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['strict-transport-security']).toMatch(/^max-age=\d{7,}/);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  const preflight = (app: TestApp, origin: string, path = '/sessions') =>
    request(app.http)
      .options(path)
      .set('Origin', origin)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'content-type, authorization');

  it('with CORS_ORIGINS, a preflight from a listed origin is allowed (methods and Authorization included)', async () => {
    for (const [origin, path] of [
      ['https://app.example.com', '/sessions'],
      ['https://admin.example.com', `/sessions/${sesId()}`],
    ]) {
      const res = await preflight(cors, origin, path);
      expect(res.status).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
      expect(res.headers['access-control-allow-methods']).toEqual(expect.stringContaining('PATCH'));
      expect(res.headers['access-control-allow-methods']).toEqual(expect.stringContaining('DELETE'));
      expect(res.headers['access-control-allow-headers']?.toLowerCase()).toEqual(expect.stringContaining('authorization'));
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    }
  });

  it('with CORS_ORIGINS, a listed origin\'s actual request gets Access-Control-Allow-Origin and may read Retry-After', async () => {
    const res = await startLogin(cors, { user: {} }).set('Origin', 'https://app.example.com').expect(400);
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(res.headers['access-control-expose-headers']).toEqual(expect.stringContaining('Retry-After'));
    expect(res.headers.vary).toMatch(/Origin/i);
  });

  it.each(['https://evil.example.com', 'https://app.example.com.evil.test', 'http://app.example.com', 'null', 'https://APP.example.com:444'])(
    'with CORS_ORIGINS, origin %s gets no Access-Control-Allow-Origin',
    async (origin) => {
      const pre = await preflight(cors, origin);
      expect(pre.status).toBeLessThan(500);
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
      const actual = await request(cors.http).get('/sessions/current').set('Origin', origin).expect(401);
      expect(actual.headers['access-control-allow-origin']).toBeUndefined();
    },
  );

  it('without CORS_ORIGINS, no origin gets Access-Control-Allow-Origin, preflight or not', async () => {
    for (const origin of ['https://app.example.com', 'https://evil.example.com']) {
      const pre = await preflight(t, origin);
      expect(pre.status).toBeLessThan(500);
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
      const actual = await request(t.http).get('/sessions/current').set('Origin', origin).expect(401);
      expect(actual.headers['access-control-allow-origin']).toBeUndefined();
      expect(actual.headers['access-control-allow-methods']).toBeUndefined();
    }
  });

  it('JSON bodies only (415), at most 16 KiB (413), unknown routes 404 JSON', async () => {
    const form = await request(t.http).post('/sessions?mode=email').type('form').send({ a: 'b' });
    expect({ status: form.status, body: form.body }).toEqual({ status: 415, body: errorBody(415, 'unsupported_media_type') });
    const body = JSON.stringify({ ...othr('big@example.com'), pad: 'x' });
    const big = `${body.slice(0, -1)}${' '.repeat(16 * 1024 - body.length + 1)}}`;
    expect(Buffer.byteLength(big)).toBe(16 * 1024 + 1);
    const tooBig = await request(t.http).post('/sessions?mode=email').set('Content-Type', 'application/json').send(big);
    expect({ status: tooBig.status, body: tooBig.body }).toEqual({ status: 413, body: errorBody(413, 'payload_too_large') });
    const unknown = await request(t.http).delete('/users/usr-1');
    expect({ status: unknown.status, body: unknown.body }).toEqual({ status: 404, body: errorBody(404, 'not_found') });
    expect(unknown.headers['content-type']).toMatch(/^application\/json/);
  });
});

describe('account enumeration: errors do not depend on whether an email address is registered', () => {
  let t: TestApp;
  /** A registered user with a confirmed `mobi` session and a pending `othr` one. */
  let registered: { email: string; confirmed: { uuid: string; token: string }; pending: { uuid: string; token: string; code: string } };
  /** Every error body seen here, to check that none names an email address or a user or device id. */
  const bodies: string[] = [];

  beforeAll(async () => {
    t = await createTestApp();
    const email = uniqueEmail('registered');
    const confirmed = await createConfirmedSession(t, mobi(email, vendor()));
    const pending = await createPendingSession(t, othr(email));
    registered = { email, confirmed, pending };
  });
  afterAll(async () => {
    for (const text of bodies) {
      expect(text).not.toMatch(/@|usr-|dev-/);
    }
    await t?.close();
  });

  /** Status, body bytes and the headers a client could tell apart. */
  const shape = (res: request.Response) => {
    if (res.status >= 400) bodies.push(res.text);
    return {
      status: res.status,
      text: res.text,
      contentType: res.headers['content-type'],
      wwwAuthenticate: res.headers['www-authenticate'],
      retryAfter: res.headers['retry-after'],
    };
  };
  /** Asserts that every response has the same shape and returns it. */
  const allSame = (responses: request.Response[]) => {
    const shapes = responses.map(shape);
    for (const s of shapes.slice(1)) expect(s).toEqual(shapes[0]);
    return shapes[0];
  };

  it('POST /sessions with an invalid body, a bad mode or a bad vendor_uuid: the same bytes for a registered and an unknown email', async () => {
    const unknown = uniqueEmail('unregistered');
    const rowsBefore = await countRows(t);
    const cases: ((email: string) => request.Test)[] = [
      (email) => startLogin(t, { user: { email }, device: { type: 'tablet' } }),
      (email) => startLogin(t, { user: { email }, device: { type: 'mobi' } }),
      (email) => startLogin(t, { user: { email }, device: { type: 'mobi', vendor_uuid: '00000000-0000-0000-0000-000000000000' } }),
      (email) => startLogin(t, { user: { email, admin: true }, device: { type: 'othr' } }),
      (email) => request(t.http).post('/sessions?mode=sms').send(othr(email)),
      (email) => request(t.http).post('/sessions').send(othr(email)),
      (email) => request(t.http).post('/sessions?mode=email').set('Content-Type', 'text/plain').send(JSON.stringify(othr(email))),
      (email) => startLogin(t, { ...othr(email), extra: email }, unknownToken()),
    ];
    for (const call of cases) {
      const same = allSame([await call(registered.email), await call(unknown), await call(registered.email.toUpperCase())]);
      expect(same.status).toBeGreaterThanOrEqual(400);
      expect(same.status).toBeLessThan(500);
    }
    expect(await countRows(t)).toEqual(rowsBefore);
  });

  it('PATCH /sessions/{unknown id}: the same 404 whatever token (a registered user\'s, a pending one\'s, an unknown one)', async () => {
    const id = sesId();
    const same = allSame([
      await confirm(t, id, registered.confirmed.token, '123456'),
      await confirm(t, id, registered.pending.token, '123456'),
      await confirm(t, id, unknownToken(), '123456'),
      await confirm(t, sesId(), unknownToken(), registered.pending.code),
    ]);
    expect(same.status).toBe(404);
    expect(JSON.parse(same.text)).toEqual(errorBody(404, 'session_not_found'));
  });

  it('PATCH with a wrong token: the same 401 for a pending or a confirmed session, with an unknown token or another session\'s', async () => {
    const before = await sessionRow(t, registered.pending.uuid);
    const same = allSame([
      await confirm(t, registered.pending.uuid, unknownToken(), registered.pending.code),
      await confirm(t, registered.pending.uuid, registered.confirmed.token, registered.pending.code),
      await confirm(t, registered.confirmed.uuid, unknownToken(), '123456'),
      await confirm(t, registered.confirmed.uuid, registered.pending.token, '123456'),
    ]);
    expect(same.status).toBe(401);
    expect(JSON.parse(same.text)).toEqual(errorBody(401, 'unauthorized'));
    expect(await sessionRow(t, registered.pending.uuid)).toEqual(before);
  });

  it('a wrong code: the same otp_invalid for a long-registered user and for one registered a moment ago', async () => {
    const fresh = await createPendingSession(t, othr(uniqueEmail('first-login')));
    const other = await createPendingSession(t, mobi(registered.email, vendor()));
    const same = allSame([
      await confirm(t, fresh.uuid, fresh.token, wrongCode(fresh.code)),
      await confirm(t, other.uuid, other.token, wrongCode(other.code)),
    ]);
    expect(JSON.parse(same.text)).toEqual(errorBody(400, 'otp_invalid', { attempts_remaining: 4 }));
  });

  it('DELETE, GET /sessions and GET /sessions/current with unknown or unusable tokens: for one token, the same 401 everywhere, whichever session it names', async () => {
    // The 401 says what is wrong with the token sent (issue #13), so it depends on that token only:
    // never on the session named in the path, nor on whether its user is registered.
    const answers = async (token: string | undefined) => {
      const responses = [];
      const auth = (call: request.Test) => (token === undefined ? call : call.set('Authorization', bearer(token)));
      for (const id of [registered.confirmed.uuid, registered.pending.uuid, sesId()]) {
        // (A pending session's own token may log it out: 204, not a refusal.)
        if (token === registered.pending.token && id === registered.pending.uuid) continue;
        responses.push(await auth(request(t.http).delete(`/sessions/${id}`)));
      }
      responses.push(await auth(request(t.http).get('/sessions')), await auth(request(t.http).get('/sessions/current')));
      return responses;
    };
    const unknown = allSame(await answers(unknownToken()));
    const pending = allSame(await answers(registered.pending.token));
    const missing = allSame([...(await answers('not a token')), ...(await answers('')), ...(await answers(undefined))]);
    for (const same of [unknown, pending, missing]) expect(same.status).toBe(401);
    // Each kind of token is told its own problem (none, unknown, a pending session).
    expect(new Set([unknown.text, pending.text, missing.text]).size).toBe(3);
  });

  it('DELETE of another user\'s session and of a session that does not exist: the same 404', async () => {
    const stranger = await createConfirmedSession(t, mobi(uniqueEmail('stranger'), vendor()));
    const before = await sessionRow(t, stranger.uuid);
    const same = allSame([
      await request(t.http).delete(`/sessions/${stranger.uuid}`).set('Authorization', bearer(registered.confirmed.token)),
      await request(t.http).delete(`/sessions/${sesId()}`).set('Authorization', bearer(registered.confirmed.token)),
    ]);
    expect(same.status).toBe(404);
    expect(await sessionRow(t, stranger.uuid)).toEqual(before);
  });

  it('POST /sessions/{uuid}/otp with an unknown token: the same 401 for any user\'s pending session', async () => {
    const fresh = await createPendingSession(t, othr(uniqueEmail('resend-enum')));
    const same = allSame([
      await request(t.http).post(`/sessions/${fresh.uuid}/otp`).set('Authorization', bearer(unknownToken())),
      await request(t.http).post(`/sessions/${registered.pending.uuid}/otp`).set('Authorization', bearer(unknownToken())),
      await request(t.http).post(`/sessions/${registered.confirmed.uuid}/otp`).set('Authorization', bearer(fresh.token)),
    ]);
    expect(same.status).toBe(401);
  });
});

/** A TCP server on a loopback port that accepts connections and never answers (a hung Redis). */
async function hungServer(): Promise<{ port: number; acceptedConnections(): number; close(): Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.resume(); // read and ignore every command
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    acceptedConnections: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback TCP port that nothing listens on (taken, then released). */
function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
