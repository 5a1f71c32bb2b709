import { randomBytes, randomUUID } from 'node:crypto';
import request from 'supertest';
import { confirm, createConfirmedSession, createPendingSession, mobi, othr, startLogin, uniqueEmail, wrongCode } from './support/factories.js';
import { LogCapture, parsePrometheus, sampleValue, samplesOf, sumOf } from './support/observability.js';
import { createTestApp, type TestApp } from './support/test-app.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A request id nobody else uses, so that its log lines can be singled out. */
const newRequestId = (tag: string) => `${tag}-${randomBytes(6).toString('hex')}`;

describe('observability: health, request ids, request logs, no secrets in logs', () => {
  let t: TestApp;
  const logs = new LogCapture();
  beforeAll(async () => {
    t = await createTestApp({ LOG_LEVEL: 'debug' }, { logStream: logs });
  });
  afterAll(() => t.close());

  describe('health probes', () => {
    it('GET /health/live answers 200 {"status":"ok"}', async () => {
      const res = await request(t.http).get('/health/live').expect(200);
      expect(res.body).toEqual({ status: 'ok' });
    });

    it('GET /health/ready answers 200 with the database up', async () => {
      const res = await request(t.http).get('/health/ready').expect(200);
      expect(res.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' } } });
    });
  });

  describe('X-Request-Id', () => {
    it('echoes a well-formed id sent by the client', async () => {
      const id = 'req_1.2:3-ABC';
      const res = await request(t.http).get('/health/live').set('X-Request-Id', id).expect(200);
      expect(res.headers['x-request-id']).toBe(id);
    });

    it('accepts an id of exactly 128 allowed characters', async () => {
      const id = 'a'.repeat(128);
      const res = await request(t.http).get('/health/live').set('X-Request-Id', id).expect(200);
      expect(res.headers['x-request-id']).toBe(id);
    });

    it('generates a UUID when the client sends none, a new one per request', async () => {
      const first = await request(t.http).get('/health/live').expect(200);
      const second = await request(t.http).get('/health/live').expect(200);
      expect(first.headers['x-request-id']).toMatch(UUID_V4);
      expect(second.headers['x-request-id']).toMatch(UUID_V4);
      expect(second.headers['x-request-id']).not.toBe(first.headers['x-request-id']);
    });

    it.each([
      ['200 characters', 'b'.repeat(200)],
      ['129 characters', 'c'.repeat(129)],
      ['spaces', 'has spaces in it'],
      ['a slash', 'a/b'],
      ['quotes and braces', '"}{"injected":true'],
    ])('replaces an invalid id (%s) with a generated UUID, and logs the generated one', async (_what, invalid) => {
      const res = await request(t.http).get('/health/live').set('X-Request-Id', invalid).expect(200);
      const generated = res.headers['x-request-id'];
      expect(generated).toMatch(UUID_V4);
      const lines = await logs.waitForRequestLines(generated);
      expect(lines).toHaveLength(1);
      expect(logs.linesMentioning(invalid)).toEqual([]);
    });

    it('also sets the id on error responses', async () => {
      const id = newRequestId('err');
      const res = await request(t.http).get('/no-such-route').set('X-Request-Id', id).expect(404);
      expect(res.headers['x-request-id']).toBe(id);
    });
  });

  describe('request log', () => {
    it('writes exactly one line per request, with id, method, path, route, status and duration', async () => {
      const id = newRequestId('live');
      await request(t.http).get('/health/live?probe=1').set('X-Request-Id', id).expect(200);
      const lines = await logs.waitForRequestLines(id);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        req: { id, method: 'GET', path: '/health/live' },
        res: { statusCode: 200 },
        route: '/health/live',
        responseTime: expect.any(Number),
      });
      expect(lines[0].responseTime).toBeGreaterThanOrEqual(0);
      // Nothing else was logged for this request, and the query string stays out of the line.
      expect(logs.linesMentioning(id)).toHaveLength(1);
      expect(logs.linesMentioning('probe=1')).toEqual([]);
    });

    it('logs the route pattern for a PATCH, not the raw session id', async () => {
      const pending = await createPendingSession(t, mobi(uniqueEmail('log')));
      const id = newRequestId('patch');
      await confirm(t, pending.uuid, pending.token, wrongCode(pending.code)).set('X-Request-Id', id).expect(400);
      const lines = await logs.waitForRequestLines(id);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        req: { id, method: 'PATCH', path: `/sessions/${pending.uuid}` },
        res: { statusCode: 400 },
        route: '/sessions/:uuid',
        responseTime: expect.any(Number),
      });
    });

    it('logs one line for each of several concurrent requests, each with its own id and status', async () => {
      const calls = [
        { id: newRequestId('c1'), send: (id: string) => startLogin(t, othr(uniqueEmail('conc'))).set('X-Request-Id', id), status: 201, method: 'POST', route: '/sessions' },
        { id: newRequestId('c2'), send: (id: string) => request(t.http).get('/sessions/current').set('X-Request-Id', id), status: 401, method: 'GET', route: '/sessions/current' },
        { id: newRequestId('c3'), send: (id: string) => request(t.http).get('/health/ready').set('X-Request-Id', id), status: 200, method: 'GET', route: '/health/ready' },
        { id: newRequestId('c4'), send: (id: string) => request(t.http).get('/nope').set('X-Request-Id', id), status: 404, method: 'GET', route: 'unmatched' },
        { id: newRequestId('c5'), send: (id: string) => request(t.http).post('/sessions?mode=sms').send({}).set('X-Request-Id', id), status: 400, method: 'POST', route: '/sessions' },
      ];
      const responses = await Promise.all(calls.map((c) => c.send(c.id)));
      responses.forEach((res, i) => expect(res.status).toBe(calls[i].status));
      for (const c of calls) {
        const lines = await logs.waitForRequestLines(c.id);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatchObject({ req: { id: c.id, method: c.method }, res: { statusCode: c.status }, route: c.route });
      }
    });
  });

  describe('request log for refused bodies (rejected before the endpoint runs, logged under its route)', () => {
    it.each([
      ['415 for a non-JSON body', () => request(t.http).post('/sessions?mode=email').set('Content-Type', 'text/plain').send('hello'), 415],
      ['400 for malformed JSON', () => request(t.http).post('/sessions?mode=email').set('Content-Type', 'application/json').send('{"user":'), 400],
      ['413 for a body over 16 KiB', () => request(t.http).post('/sessions?mode=email').send({ pad: 'x'.repeat(17_000) }), 413],
    ])('%s: echoes the X-Request-Id and writes exactly one line', async (_what, send, status) => {
      const id = newRequestId('body');
      const res = await send().set('X-Request-Id', id);
      expect(res.status).toBe(status);
      expect(res.headers['x-request-id']).toBe(id);
      const lines = await logs.waitForRequestLines(id);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ req: { id, method: 'POST', path: '/sessions' }, res: { statusCode: status }, route: '/sessions' });
    });
  });

  describe('secrets never reach the log (LOG_LEVEL=debug)', () => {
    it('keeps tokens, codes and Authorization headers out of every log line through a full login and its failures', async () => {
      const before = logs.raw.length;
      const email = uniqueEmail('secret');
      const vendor = randomUUID();
      const secrets: string[] = [];

      const started = await startLogin(t, mobi(email, vendor)).expect(201);
      const { uuid, token } = started.body as { uuid: string; token: string };
      secrets.push(token);
      const code = await t.smtp.codeFor(email);

      // Wrong code, then the right one.
      await confirm(t, uuid, token, wrongCode(code)).expect(400);
      await confirm(t, uuid, token, code).expect(200);
      // Authenticated calls with the token.
      await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${token}`).expect(200);
      await request(t.http).get('/sessions').set('Authorization', `Bearer ${token}`).expect(200);
      await startLogin(t, mobi(email, vendor), token).expect(200); // reuse
      // A bad token, a malformed header, someone else's token on a session, an unknown session.
      const badToken = randomBytes(32).toString('base64url');
      secrets.push(badToken);
      await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${badToken}`).expect(401);
      const malformed = `Basic ${Buffer.from(`user:${randomBytes(8).toString('hex')}`).toString('base64')}`;
      secrets.push(malformed.slice('Basic '.length));
      await request(t.http).get('/sessions/current').set('Authorization', malformed).expect(401);
      const other = await createPendingSession(t, othr(uniqueEmail('secret-other')));
      secrets.push(other.token);
      await confirm(t, other.uuid, token, other.code).expect(401); // not this session's token
      await confirm(t, `ses-${randomUUID()}`, token, code).expect(404);
      await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${token}`).set('Cookie', `sid=${token}`).expect(200);
      // Logout, then the dead token.
      await request(t.http).delete(`/sessions/${uuid}`).set('Authorization', `Bearer ${token}`).expect(204);
      await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${token}`).expect(401);

      // The access lines are written on 'finish': wait for the last one.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const written = logs.raw.slice(before);
      // The capture works: one access line per request above (13), at least.
      expect(written.filter((line) => line.includes('"responseTime"')).length).toBeGreaterThanOrEqual(13);

      for (const secret of secrets) expect(written.filter((line) => line.includes(secret))).toEqual([]);
      for (const otp of [code, other.code]) {
        expect(written.filter((line) => new RegExp(`(?<![0-9])${otp}(?![0-9])`).test(line))).toEqual([]);
      }
      expect(written.filter((line) => /bearer/i.test(line))).toEqual([]);
      expect(written.filter((line) => /"authorization"|"cookie"/i.test(line) && !line.includes('[redacted]'))).toEqual([]);
    });
  });
});

describe('observability: GET /metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it('counts logins, confirmations, failures and mails exactly, times requests by route pattern, and leaks nothing', async () => {
    const emailA = uniqueEmail('metrics-a');
    const emailB = uniqueEmail('metrics-b');
    // Login + confirm on a mobi device, a reuse of that session, and a wrong code on an othr login.
    const a = await createConfirmedSession(t, mobi(emailA));
    await startLogin(t, mobi(emailA), a.token).expect(200);
    const b = await createPendingSession(t, othr(emailB));
    const wrong = await confirm(t, b.uuid, b.token, wrongCode(b.code)).expect(400);
    expect(wrong.body.code).toBe('otp_invalid');

    // Mails are sent by the queue worker after the response, and their outbox rows are deleted in
    // batches a few ms later: scrape until both are counted as sent and none is left queued.
    let res = await request(t.http).get('/metrics').expect(200);
    for (const deadline = Date.now() + 5_000; Date.now() < deadline; ) {
      const scraped = parsePrometheus(res.text);
      if (sampleValue(scraped, 'mails_sent_total') === 2 && sampleValue(scraped, 'mail_queue_depth') === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
      res = await request(t.http).get('/metrics').expect(200);
    }
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.headers['cache-control']).toBe('no-store');
    const text = res.text;
    const samples = parsePrometheus(text);

    expect(sampleValue(samples, 'sessions_created_total', { device_type: 'mobi' })).toBe(1);
    expect(sampleValue(samples, 'sessions_created_total', { device_type: 'othr' })).toBe(1);
    expect(sumOf(samples, 'sessions_created_total')).toBe(2);
    expect(sampleValue(samples, 'sessions_reused_total')).toBe(1);
    expect(sampleValue(samples, 'sessions_confirmed_total', { device_type: 'mobi' })).toBe(1);
    expect(sumOf(samples, 'sessions_confirmed_total')).toBe(1);
    expect(sampleValue(samples, 'otp_failures_total')).toBe(1);
    expect(sampleValue(samples, 'mails_sent_total')).toBe(2);
    expect(sampleValue(samples, 'mails_failed_total')).toBe(0);
    expect(sumOf(samples, 'sessions_expired_total')).toBe(0);
    expect(sumOf(samples, 'sessions_revoked_total')).toBe(0);
    expect(sumOf(samples, 'rate_limited_requests_total')).toBe(0);
    expect(sampleValue(samples, 'mail_queue_depth')).toBe(0);
    for (const name of ['sessions_expired_total', 'sessions_revoked_total', 'rate_limited_requests_total']) {
      expect(text).toContain(`# TYPE ${name} counter`);
    }

    // The histogram: one series per method/route pattern/status.
    const count = (labels: Record<string, string>) => sampleValue(samples, 'http_request_duration_seconds_count', labels);
    expect(count({ method: 'POST', route: '/sessions', status: '201' })).toBe(2);
    expect(count({ method: 'POST', route: '/sessions', status: '200' })).toBe(1);
    expect(count({ method: 'PATCH', route: '/sessions/:uuid', status: '200' })).toBe(1);
    expect(count({ method: 'PATCH', route: '/sessions/:uuid', status: '400' })).toBe(1);
    const buckets = samplesOf(samples, 'http_request_duration_seconds_bucket', { method: 'POST', route: '/sessions', status: '201' });
    expect(buckets.find((s) => s.labels.le === '+Inf')?.value).toBe(2);
    expect(sampleValue(samples, 'http_request_duration_seconds_sum', { method: 'POST', route: '/sessions', status: '201' })).toBeGreaterThan(0);
    // No raw path (session id) ever becomes a label.
    expect(samples.filter((s) => Object.values(s.labels).some((v) => v.includes('ses-')))).toEqual([]);

    // Node process metrics.
    expect(sampleValue(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sampleValue(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(samplesOf(samples, 'nodejs_heap_size_used_bytes').length).toBe(1);

    // No token, email, session/user/device id or code anywhere in the exposition.
    for (const secret of [a.token, b.token, emailA, emailB, a.uuid, b.uuid, a.body.user.uuid, a.body.device.uuid]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toContain('@');
    for (const otp of [a.code, b.code]) {
      expect(samples.filter((s) => Object.values(s.labels).some((v) => v.includes(otp)))).toEqual([]);
    }

    // Scraping does not count anything but its own request.
    const again = parsePrometheus((await request(t.http).get('/metrics').expect(200)).text);
    expect(sampleValue(again, 'sessions_created_total', { device_type: 'mobi' })).toBe(1);
    expect(sampleValue(again, 'otp_failures_total')).toBe(1);
    const scrapes = { method: 'GET', route: '/metrics', status: '200' };
    expect(sampleValue(again, 'http_request_duration_seconds_count', scrapes)).toBe(
      (sampleValue(samples, 'http_request_duration_seconds_count', scrapes) ?? 0) + 1,
    );
  });

  it('labels requests that match no endpoint (404) as route="unmatched" and refused bodies by their route, never by raw path', async () => {
    await request(t.http).get(`/no-such-route/${randomUUID()}`).expect(404);
    await request(t.http).post('/sessions?mode=email').set('Content-Type', 'application/json').send('{"user":').expect(400);
    await request(t.http).patch(`/sessions/ses-${randomUUID()}`).set('Content-Type', 'text/plain').send('123456').expect(415);
    const samples = parsePrometheus((await request(t.http).get('/metrics').expect(200)).text);
    const count = (labels: Record<string, string>) => sampleValue(samples, 'http_request_duration_seconds_count', labels);
    expect(count({ method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(count({ method: 'POST', route: '/sessions', status: '400' })).toBe(1);
    expect(count({ method: 'PATCH', route: '/sessions/:uuid', status: '415' })).toBe(1);
    const routes = new Set(samplesOf(samples, 'http_request_duration_seconds_count').map((s) => s.labels.route));
    for (const route of routes) expect(['unmatched', '/metrics', '/health/live', '/health/ready', '/sessions', '/sessions/current', '/sessions/:uuid', '/sessions/:uuid/otp']).toContain(route);
  });
});

describe('observability: GET /metrics with the per-IP limit on', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ RATE_LIMIT_PER_MINUTE: '2' });
  });
  afterAll(() => t.close());

  it('counts 429s in rate_limited_requests_total{route} under the same route pattern as the histogram', async () => {
    await startLogin(t, othr(uniqueEmail('rl'))).expect(201);
    await startLogin(t, othr(uniqueEmail('rl'))).expect(201);
    await startLogin(t, othr(uniqueEmail('rl'))).expect(429);
    await request(t.http).get('/sessions/current').expect(429);
    await request(t.http).patch(`/sessions/ses-${randomUUID()}`).send({ otp_code: '123456' }).expect(429);
    const samples = parsePrometheus((await request(t.http).get('/metrics').expect(200)).text);
    expect(sampleValue(samples, 'rate_limited_requests_total', { route: '/sessions' })).toBe(1);
    expect(sampleValue(samples, 'rate_limited_requests_total', { route: '/sessions/current' })).toBe(1);
    expect(sampleValue(samples, 'rate_limited_requests_total', { route: '/sessions/:uuid' })).toBe(1);
    expect(sumOf(samples, 'rate_limited_requests_total')).toBe(3);
    const count = (labels: Record<string, string>) => sampleValue(samples, 'http_request_duration_seconds_count', labels);
    expect(count({ method: 'POST', route: '/sessions', status: '429' })).toBe(1);
    expect(count({ method: 'GET', route: '/sessions/current', status: '429' })).toBe(1);
    expect(count({ method: 'PATCH', route: '/sessions/:uuid', status: '429' })).toBe(1);
  });
});
