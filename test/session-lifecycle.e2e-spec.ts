import { SchedulerRegistry } from '@nestjs/schedule';
import pg from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { OtpMailRelay } from '../src/mail/otp-mail.relay.js';
import { createTestApp, type TestApp } from './support/test-app.js';
import { listeningPort } from './support/raw-http.js';
import { connect } from 'node:net';
import {
  confirm,
  createConfirmedSession,
  createPendingSession,
  errorBody,
  mailSettled,
  mobi,
  nextCode,
  othr,
  startLogin,
  uniqueEmail,
  wrongCode,
} from './support/factories.js';

/**
 * SPEC "Beyond the seed": GET /sessions/current, GET /sessions, DELETE /sessions/{uuid} and
 * POST /sessions/{uuid}/otp, through HTTP on a real PostgreSQL, with the rows they leave behind.
 */

type Json = Record<string, any>;
type Session = { uuid: string; token: string; code: string; body: Json };

const OTHR_TTL = 7_200;
const OTP_TTL = 300;
const COOLDOWN = 60;
const INFO_KEYS = [
  'uuid', 'status', 'user', 'device', 'created_at', 'otp_expires_at', 'confirmed_at', 'expires_at',
  'last_seen_at', 'client_ip', 'user_agent', 'current',
];
/** The address supertest connects from, as Express reports it. */
const LOOPBACK = /^(::ffff:127\.0\.0\.1|127\.0\.0\.1|::1)$/;
const UNKNOWN_SESSION = 'ses-00000000-0000-4000-8000-000000000000';

let vendorCounter = 0;
/** A distinct vendor_uuid, i.e. a distinct device. */
const vendor = (): string => `0f8fad5b-d9cb-469f-a165-${String(++vendorCounter).padStart(12, '0')}`;

const bearer = (token: string) => `Bearer ${token}`;
/** A 43-character token that no session has. */
const unknownToken = () => `unknown${Math.random().toString(36).slice(2)}`.padEnd(43, 'x');

function withAuth(call: request.Test, authorization?: string): request.Test {
  return authorization === undefined ? call : call.set('Authorization', authorization);
}
const getCurrent = (t: TestApp, authorization?: string) => withAuth(request(t.http).get('/sessions/current'), authorization);
const listSessions = (t: TestApp, authorization?: string) => withAuth(request(t.http).get('/sessions'), authorization);
const revoke = (t: TestApp, uuid: string, authorization?: string) => withAuth(request(t.http).delete(`/sessions/${uuid}`), authorization);
const resend = (t: TestApp, uuid: string, authorization?: string) => withAuth(request(t.http).post(`/sessions/${uuid}/otp`), authorization);

/** The session's row, every column, plus `xmin` (changes on any write to the row, even of equal values). */
async function row(t: TestApp, uuid: string): Promise<Json> {
  const rows = await t.db.query(`SELECT xmin::text AS xmin, s.* FROM sessions s WHERE s.id = $1`, [uuid.replace(/^ses-/, '')]);
  if (rows.length !== 1) throw new Error(`No sessions row for ${uuid}`);
  return rows[0];
}

async function sendsOf(t: TestApp, uuid: string): Promise<number> {
  const [{ n }] = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM otp_sends WHERE session_id = $1`, [uuid.replace(/^ses-/, '')]);
  return n;
}

const iso = (date: unknown): string | null => (date instanceof Date ? date.toISOString() : (date as null));

/** The GET /sessions(/current) view of a session, from its POST/PATCH body and its row. */
async function infoOf(t: TestApp, session: Session, current: boolean): Promise<Json> {
  const r = await row(t, session.uuid);
  return {
    uuid: session.uuid,
    status: r.status,
    user: session.body.user,
    device: session.body.device,
    created_at: session.body.created_at,
    otp_expires_at: iso(r.otp_expires_at),
    confirmed_at: iso(r.confirmed_at),
    expires_at: iso(r.expires_at),
    last_seen_at: iso(r.last_seen_at),
    client_ip: r.client_ip,
    user_agent: r.user_agent,
    current,
  };
}

/** 401 `unauthorized` with its RFC 6750 challenge. */
function expectUnauthorized(res: request.Response): void {
  expect({ status: res.status, body: res.body }).toEqual({ status: 401, body: errorBody(401, 'unauthorized') });
  expect(res.headers['www-authenticate']).toBe('Bearer');
}

/** Writes `text` on a new connection and reads the whole answer (the server closes it). */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(text));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}

/** Five wrong codes: the session ends as `expired`. */
async function exhaustAttempts(t: TestApp, session: Session): Promise<void> {
  for (let left = 4; left >= 0; left--) {
    await confirm(t, session.uuid, session.token, wrongCode(session.code)).expect(400);
  }
  expect((await row(t, session.uuid)).status).toBe('expired');
}

describe('session lifecycle', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
    // The expiry sweep is tested on its own (session-sweep.e2e-spec.ts); here the rows change only
    // through the requests under test.
    t.app.get(SchedulerRegistry).deleteInterval('session-sweep');
  });
  afterAll(() => t.close());

  describe('GET /sessions/current', () => {
    it('answers 200 with the caller\'s confirmed session, without its token', async () => {
      const email = uniqueEmail('current');
      const session = await createConfirmedSession(t, mobi(email, vendor()), { 'User-Agent': 'CurrentTest/1.0' });
      const now = t.clock.now().toISOString();

      const res = await getCurrent(t, bearer(session.token)).expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(Object.keys(res.body)).toEqual(INFO_KEYS);
      expect(res.body).toEqual({
        uuid: session.uuid,
        status: 'confirmed',
        user: session.body.user,
        device: session.body.device,
        created_at: session.body.created_at,
        otp_expires_at: session.body.otp_expires_at,
        confirmed_at: session.body.confirmed_at,
        expires_at: null,
        last_seen_at: now,
        client_ip: expect.stringMatching(LOOPBACK),
        user_agent: 'CurrentTest/1.0',
        current: true,
      });
      expect(res.body.user).toEqual({ uuid: expect.stringMatching(/^usr-/), email });
      expect(res.text).not.toContain(session.token);
      expect(res.text).not.toMatch(/token|otp_hash|otp_code|attempts/);
      expect(await infoOf(t, session, true)).toEqual(res.body);
    });

    it('authenticates an othr session until its expires_at, and a mobi session without expiry for ever', async () => {
      const email = uniqueEmail('current-ttl');
      const web = await createConfirmedSession(t, othr(email));
      const app = await createConfirmedSession(t, mobi(email, vendor()));
      expect(new Date(web.body.expires_at).getTime() - new Date(web.body.confirmed_at).getTime()).toBe(OTHR_TTL * 1000);

      t.clock.advance(OTHR_TTL - 1);
      expect((await getCurrent(t, bearer(web.token)).expect(200)).body.expires_at).toBe(web.body.expires_at);
      t.clock.advance(1); // now == expires_at: past it
      const before = await row(t, web.uuid);
      expectUnauthorized(await getCurrent(t, bearer(web.token)));
      expect(await row(t, web.uuid)).toEqual(before); // refused without any write

      t.clock.advance(365 * 86_400);
      expect((await getCurrent(t, bearer(app.token)).expect(200)).body).toMatchObject({ uuid: app.uuid, expires_at: null });
    });

    it('answers 401 unauthorized for a missing, malformed or unknown token, and writes nothing', async () => {
      const session = await createConfirmedSession(t, mobi(uniqueEmail('current-401'), vendor()));
      const before = await row(t, session.uuid);
      for (const authorization of [
        undefined,
        '',
        'Bearer',
        'Bearer ',
        `Basic ${session.token}`,
        `Bearer ${session.token} extra`,
        `Bearer ${session.token}x`,
        `Bearer ${session.token.slice(0, -1)}`,
        bearer(unknownToken()),
        session.token,
      ]) {
        const res = await getCurrent(t, authorization);
        expect({ authorization, status: res.status }).toEqual({ authorization, status: 401 });
        expectUnauthorized(res);
      }
      expect(await row(t, session.uuid)).toEqual(before);
      expect(before.last_seen_at).toBeNull();
    });

    it('takes the scheme in any case and one or more spaces before the token (RFC 6750 §2.1: "Bearer" 1*SP b64token)', async () => {
      const session = await createConfirmedSession(t, mobi(uniqueEmail('current-syntax'), vendor()));
      for (const authorization of [`bearer ${session.token}`, `BEARER  ${session.token}`, `Bearer     ${session.token}`]) {
        const res = await getCurrent(t, authorization);
        expect({ authorization, status: res.status, uuid: res.body.uuid }).toEqual({ authorization, status: 200, uuid: session.uuid });
      }
    });

    it('answers 401 to two Authorization headers, even when both hold the right token (Node.js would keep only the first)', async () => {
      const session = await createConfirmedSession(t, mobi(uniqueEmail('current-twice'), vendor()));
      const before = await row(t, session.uuid);
      const port = await listeningPort(t);
      // Written byte for byte: HTTP clients (and supertest) merge or refuse a repeated header.
      const twice = async (method: string, path: string, first: string, second: string) => {
        const answer = await rawExchange(port, `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${first}\r\nAuthorization: ${second}\r\nConnection: close\r\n\r\n`);
        return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]), body: JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as unknown, wwwAuthenticate: /^www-authenticate: (.*)$/im.exec(answer)?.[1].trim() };
      };
      const refused = { status: 401, body: errorBody(401, 'unauthorized'), wwwAuthenticate: 'Bearer' };
      for (const second of [bearer(session.token), bearer(unknownToken()), 'Basic dXNlcjpwYXNz']) {
        expect(await twice('GET', '/sessions/current', bearer(session.token), second)).toEqual(refused);
      }
      // Revoking with a doubled header is refused the same way (the guard, before the id and body).
      expect(await twice('DELETE', `/sessions/${session.uuid}`, bearer(session.token), bearer(session.token))).toEqual(refused);
      expect(await row(t, session.uuid)).toEqual(before);
      // The same request with the header once is accepted: the refusal was the repetition.
      await getCurrent(t, bearer(session.token)).expect(200);
    });

    it('answers 401 for the token of a pending, expired or revoked session, and writes nothing', async () => {
      const email = uniqueEmail('current-ended');
      const pending = await createPendingSession(t, mobi(email, vendor()));
      const exhausted = await createPendingSession(t, mobi(email, vendor()));
      await exhaustAttempts(t, exhausted);
      const replacedDevice = vendor();
      const replaced = await createConfirmedSession(t, mobi(email, replacedDevice));
      t.clock.advance(COOLDOWN + 1);
      await createConfirmedSession(t, mobi(email, replacedDevice)); // revokes `replaced` (one live session per device)
      const loggedOut = await createConfirmedSession(t, mobi(email, vendor()));
      await revoke(t, loggedOut.uuid, bearer(loggedOut.token)).expect(204);

      const cases: [string, Session, string][] = [
        ['pending', pending, 'pending'],
        ['expired by wrong codes', exhausted, 'expired'],
        ['revoked by a newer login of its device', replaced, 'revoked'],
        ['revoked by logout', loggedOut, 'revoked'],
      ];
      for (const [name, session, status] of cases) {
        const before = await row(t, session.uuid);
        expect({ name, status: before.status }).toEqual({ name, status });
        const res = await getCurrent(t, bearer(session.token));
        expect({ name, status: res.status }).toEqual({ name, status: 401 });
        expectUnauthorized(res);
        expect({ name, row: await row(t, session.uuid) }).toEqual({ name, row: before });
      }
    });

    it('is one indexed lookup by token hash, and writes nothing but a last_seen_at older than a minute', async () => {
      const session = await createConfirmedSession(t, mobi(uniqueEmail('current-sql'), vendor()));
      // Only the requests' statements may reach the pool meanwhile: the login's mail is settled (the
      // worker deletes its outbox row through the pool) and the outbox relay's poll (every second) is paused.
      await mailSettled(t);
      const relay = t.app.get(OtpMailRelay);
      await relay.stop();
      // Every statement reaches PostgreSQL through the pool's Client class (the `Client` option in
      // TypeORM's `extra`), which runs the hot-path texts as named (prepared) statements.
      const options = t.app.get(DataSource).options;
      if (options.type !== 'postgres') throw new Error('expected PostgreSQL options');
      const { Client } = options.extra as { Client: typeof pg.Client };
      const spy = vi.spyOn(Client.prototype, 'query');
      const statement = (call: unknown[]) => {
        const config = call[0] as string | { text: string; values: unknown[] };
        return typeof config === 'string' ? { text: config, values: call[1] as unknown[] } : config;
      };
      try {
        await getCurrent(t, bearer(session.token)).expect(200); // first use: lookup + last_seen_at
        const first = spy.mock.calls.map((call) => statement(call).text.replace(/\s+/g, ' ').trim());
        expect(first).toHaveLength(2);
        expect(first[0]).toMatch(/^SELECT .* FROM sessions s .* WHERE s\.token_hash = \$1$/);
        expect(first[1]).toMatch(/^UPDATE "sessions" SET "last_seen_at" = \$1 WHERE "id" = \$2 AND \("last_seen_at" IS NULL OR "last_seen_at" <= \$3\)$/);

        spy.mockClear();
        t.clock.advance(30);
        const before = await row(t, session.uuid);
        await getCurrent(t, bearer(session.token)).expect(200); // within the minute: the lookup only
        expect(spy.mock.calls).toHaveLength(1);
        const { text: sql, values: params } = statement(spy.mock.calls[0]);
        expect(sql.replace(/\s+/g, ' ')).toMatch(/WHERE s\.token_hash = \$1$/);
        expect(await row(t, session.uuid)).toEqual(before); // same xmin: not even a no-op write

        // The lookup can use the unique index on token_hash (seq scans disabled: the table is tiny).
        const client = new pg.Client({ connectionString: t.db.url });
        await client.connect();
        try {
          await client.query('BEGIN');
          await client.query('SET LOCAL enable_seqscan = off');
          const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${sql}`, params);
          await client.query('ROLLBACK');
          const scans: Json[] = [];
          const walk = (node: Json) => {
            scans.push(node);
            (node.Plans ?? []).forEach(walk);
          };
          walk(rows[0]['QUERY PLAN'][0].Plan);
          const onSessions = scans.filter((n) => n['Relation Name'] === 'sessions');
          expect(onSessions).toEqual([expect.objectContaining({ 'Index Name': 'sessions_token_hash_key' })]);
        } finally {
          await client.end();
        }
      } finally {
        spy.mockRestore();
        relay.start();
      }
    });

    it('sets last_seen_at on first use, keeps it for 60 s, refreshes it after', async () => {
      const session = await createConfirmedSession(t, mobi(uniqueEmail('last-seen'), vendor()));
      expect((await row(t, session.uuid)).last_seen_at).toBeNull(); // confirming is not a use of the token

      const firstUse = t.clock.now();
      expect((await getCurrent(t, bearer(session.token)).expect(200)).body.last_seen_at).toBe(firstUse.toISOString());
      const afterFirst = await row(t, session.uuid);
      expect(afterFirst.last_seen_at).toEqual(firstUse);

      t.clock.advance(30);
      expect((await getCurrent(t, bearer(session.token)).expect(200)).body.last_seen_at).toBe(firstUse.toISOString());
      expect((await listSessions(t, bearer(session.token)).expect(200)).body.sessions[0].last_seen_at).toBe(firstUse.toISOString());
      t.clock.advance(29); // 59 s after the first use
      await getCurrent(t, bearer(session.token)).expect(200);
      expect(await row(t, session.uuid)).toEqual(afterFirst); // not rewritten, not even with the same value

      t.clock.advance(2); // 61 s after the first use
      const refresh = t.clock.now();
      expect((await getCurrent(t, bearer(session.token)).expect(200)).body.last_seen_at).toBe(refresh.toISOString());
      const afterRefresh = await row(t, session.uuid);
      expect(afterRefresh.last_seen_at).toEqual(refresh);
      expect({ ...afterRefresh, xmin: null, last_seen_at: null }).toEqual({ ...afterFirst, xmin: null, last_seen_at: null });

      t.clock.advance(10);
      await listSessions(t, bearer(session.token)).expect(200);
      expect(await row(t, session.uuid)).toEqual(afterRefresh);
      t.clock.advance(60);
      const listed = await listSessions(t, bearer(session.token)).expect(200); // GET /sessions is a use too
      expect(listed.body.sessions[0].last_seen_at).toBe(t.clock.now().toISOString());
      expect((await row(t, session.uuid)).last_seen_at).toEqual(t.clock.now());
    });
  });

  describe('GET /sessions', () => {
    it('lists exactly the user\'s live sessions, newest first, with device, client IP, User-Agent, last_seen_at and current', async () => {
      const email = uniqueEmail('list');
      // Sessions that end by time: an othr session past expires_at and a pending one past its code.
      const timedOut = await createConfirmedSession(t, othr(email, vendor()));
      const codeExpired = await createPendingSession(t, mobi(email, vendor()));
      t.clock.advance(OTHR_TTL);
      // A session expired by wrong codes, one revoked by a newer login of its device, one signed out.
      const exhausted = await createPendingSession(t, mobi(email, vendor()));
      await exhaustAttempts(t, exhausted);
      const phone = vendor();
      const replaced = await createConfirmedSession(t, mobi(email, phone));
      t.clock.advance(COOLDOWN + 1);
      const caller = await createConfirmedSession(t, mobi(email, phone), { 'User-Agent': 'ListTest/phone' });
      t.clock.advance(1);
      const browser = await createConfirmedSession(t, othr(email), { 'User-Agent': 'ListTest/browser' });
      t.clock.advance(1);
      const signedOut = await createConfirmedSession(t, othr(email, vendor()));
      await revoke(t, signedOut.uuid, bearer(caller.token)).expect(204);
      t.clock.advance(1);
      const pending = await createPendingSession(t, mobi(email, vendor()), { 'User-Agent': 'ListTest/tablet' });
      // Another user's live session.
      const stranger = await createConfirmedSession(t, mobi(uniqueEmail('list-stranger'), vendor()));

      const ended = await t.db.query<{ id: string; status: string }>(
        `SELECT id, status FROM sessions WHERE id = ANY($1::uuid[]) ORDER BY status, id`,
        [[timedOut, codeExpired, exhausted, replaced, signedOut].map((s) => s.uuid.slice(4))],
      );
      // Two of them end by time only: their rows still say confirmed / pending (no sweep here).
      expect(ended.map((r) => r.status).sort()).toEqual(['confirmed', 'expired', 'pending', 'revoked', 'revoked']);

      const res = await listSessions(t, bearer(caller.token)).expect(200);
      expect(Object.keys(res.body)).toEqual(['sessions']);
      expect(res.body.sessions.map((s: Json) => s.uuid)).toEqual([pending.uuid, browser.uuid, caller.uuid]);
      expect(res.body.sessions).toEqual([
        await infoOf(t, pending, false),
        await infoOf(t, browser, false),
        await infoOf(t, caller, true),
      ]);
      for (const item of res.body.sessions) expect(Object.keys(item)).toEqual(INFO_KEYS);
      expect(res.body.sessions[0]).toMatchObject({
        status: 'pending',
        device: { uuid: pending.body.device.uuid, type: 'mobi', vendor_uuid: pending.body.device.vendor_uuid },
        confirmed_at: null,
        last_seen_at: null,
        client_ip: expect.stringMatching(LOOPBACK),
        user_agent: 'ListTest/tablet',
        current: false,
      });
      expect(res.body.sessions[1]).toMatchObject({ status: 'confirmed', device: { type: 'othr', vendor_uuid: null }, user_agent: 'ListTest/browser', last_seen_at: null });
      expect(res.body.sessions[2]).toMatchObject({ status: 'confirmed', user_agent: 'ListTest/phone', last_seen_at: t.clock.now().toISOString() });

      // Never a token, a code or its hash.
      for (const s of [timedOut, codeExpired, exhausted, replaced, caller, browser, signedOut, pending, stranger]) {
        expect(res.text).not.toContain(s.token);
      }
      expect(res.text).not.toMatch(/"(token|otp_hash|otp_code|otp_attempts_left|attempts_remaining|token_hash)"/);
      expect(res.text).not.toContain(stranger.uuid);

      // The same set as the rows say is live, seen from another of the user's sessions.
      const live = await t.db.query<{ id: string }>(
        `SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE u.email = $1 AND ((s.status = 'confirmed' AND (s.expires_at IS NULL OR s.expires_at > $2))
             OR (s.status = 'pending' AND s.otp_expires_at > $2 AND s.otp_attempts_left > 0))`,
        [email, t.clock.now()],
      );
      const fromBrowser = await listSessions(t, bearer(browser.token)).expect(200);
      expect(fromBrowser.body.sessions.map((s: Json) => s.uuid).sort()).toEqual(live.map((r) => `ses-${r.id}`).sort());
      expect(fromBrowser.body.sessions.map((s: Json) => [s.uuid, s.current])).toEqual([
        [pending.uuid, false],
        [browser.uuid, true],
        [caller.uuid, false],
      ]);
    });

    it('drops a pending session once its code expires and an othr session at its expires_at, without a sweep', async () => {
      const email = uniqueEmail('list-time');
      const caller = await createConfirmedSession(t, mobi(email, vendor()));
      const web = await createConfirmedSession(t, othr(email));
      const pending = await createPendingSession(t, mobi(email, vendor()));
      const uuids = async () => (await listSessions(t, bearer(caller.token)).expect(200)).body.sessions.map((s: Json) => s.uuid).sort();

      expect(await uuids()).toEqual([caller.uuid, web.uuid, pending.uuid].sort());
      t.clock.advance(OTP_TTL - 1);
      expect(await uuids()).toEqual([caller.uuid, web.uuid, pending.uuid].sort());
      t.clock.advance(1);
      expect(await uuids()).toEqual([caller.uuid, web.uuid].sort());
      t.clock.advance(OTHR_TTL - OTP_TTL);
      expect(await uuids()).toEqual([caller.uuid]);
      expectUnauthorized(await listSessions(t, bearer(web.token)));
    });

    it('records client_ip and User-Agent of the creating request (X-Forwarded-For ignored without TRUST_PROXY)', async () => {
      const email = uniqueEmail('list-client');
      const session = await createConfirmedSession(t, mobi(email, vendor()), {
        'User-Agent': 'MyApp/1.2 (iPhone; iOS 19)',
        'X-Forwarded-For': '203.0.113.9',
      });
      const longAgent = `LongAgent/${'x'.repeat(600)}`;
      const long = await createPendingSession(t, othr(email), { 'User-Agent': longAgent });

      const res = await listSessions(t, bearer(session.token)).set('User-Agent', 'SomethingElse/2.0').set('X-Forwarded-For', '198.51.100.1').expect(200);
      const mine = res.body.sessions.find((s: Json) => s.uuid === session.uuid);
      expect(mine.user_agent).toBe('MyApp/1.2 (iPhone; iOS 19)');
      expect(mine.client_ip).toMatch(LOOPBACK);
      expect(res.body.sessions.find((s: Json) => s.uuid === long.uuid).user_agent).toBe(longAgent.slice(0, 512));

      const stored = await row(t, session.uuid);
      expect({ client_ip: stored.client_ip, user_agent: stored.user_agent }).toEqual({ client_ip: mine.client_ip, user_agent: mine.user_agent });
      expect((await row(t, long.uuid)).user_agent).toBe(longAgent.slice(0, 512));
      const current = await getCurrent(t, bearer(session.token)).set('User-Agent', 'Third/3.0').expect(200);
      expect(current.body).toMatchObject({ client_ip: mine.client_ip, user_agent: 'MyApp/1.2 (iPhone; iOS 19)' });
    });

    it('answers 401 without the token of a confirmed, unexpired session', async () => {
      const email = uniqueEmail('list-401');
      const pending = await createPendingSession(t, mobi(email, vendor()));
      const loggedOut = await createConfirmedSession(t, mobi(email, vendor()));
      await revoke(t, loggedOut.uuid, bearer(loggedOut.token)).expect(204);
      for (const authorization of [undefined, 'Bearer', `Basic ${pending.token}`, bearer(unknownToken()), bearer(pending.token), bearer(loggedOut.token)]) {
        const res = await listSessions(t, authorization);
        expect({ authorization, status: res.status }).toEqual({ authorization, status: 401 });
        expectUnauthorized(res);
      }
    });
  });

  describe('DELETE /sessions/{uuid}', () => {
    it('logs out with the session\'s own token: 204, revoked at once, and 204 again on repeat', async () => {
      const session = await createConfirmedSession(t, mobi(uniqueEmail('logout'), vendor()));
      await getCurrent(t, bearer(session.token)).expect(200);
      const before = await row(t, session.uuid);
      t.clock.advance(5);

      const res = await revoke(t, session.uuid, bearer(session.token)).expect(204);
      expect(res.text).toBe('');
      const after = await row(t, session.uuid);
      expect(after).toMatchObject({ status: 'revoked', ended_at: t.clock.now(), otp_hash: null });
      expect({ ...after, xmin: null, status: null, ended_at: null }).toEqual({ ...before, xmin: null, status: null, ended_at: null });
      expectUnauthorized(await getCurrent(t, bearer(session.token)));

      t.clock.advance(5);
      await revoke(t, session.uuid, bearer(session.token)).expect(204);
      expect(await row(t, session.uuid)).toEqual(after); // nothing rewritten
    });

    it('logs out a pending session with its own token; its code no longer confirms it', async () => {
      const session = await createPendingSession(t, mobi(uniqueEmail('logout-pending'), vendor()));
      await revoke(t, session.uuid, bearer(session.token)).expect(204);
      expect(await row(t, session.uuid)).toMatchObject({ status: 'revoked', ended_at: t.clock.now(), otp_hash: null });
      expect((await confirm(t, session.uuid, session.token, session.code).expect(400)).body).toEqual(errorBody(400, 'session_revoked'));
      await revoke(t, session.uuid, bearer(session.token)).expect(204);
    });

    it('answers 204 with the own token of a session that already ended, which keeps its status', async () => {
      const email = uniqueEmail('logout-ended');
      const exhausted = await createPendingSession(t, mobi(email, vendor()));
      await exhaustAttempts(t, exhausted);
      const web = await createConfirmedSession(t, othr(email));
      const desktop = await createConfirmedSession(t, othr(email, vendor()));
      const phone = await createConfirmedSession(t, mobi(email, vendor()));
      const codeExpired = await createPendingSession(t, mobi(email, vendor()));
      t.clock.advance(OTHR_TTL); // past expires_at and the code's expiry; no sweep has marked them yet

      const exhaustedBefore = await row(t, exhausted.uuid);
      await revoke(t, exhausted.uuid, bearer(exhausted.token)).expect(204);
      expect(await row(t, exhausted.uuid)).toEqual(exhaustedBefore);

      await revoke(t, web.uuid, bearer(web.token)).expect(204);
      expect((await row(t, web.uuid)).status).toBe('expired'); // it had expired; a logout does not make it "revoked"
      expectUnauthorized(await getCurrent(t, bearer(web.token)));
      expect((await confirm(t, web.uuid, web.token, '123456').expect(400)).body).toEqual(errorBody(400, 'session_expired'));
      const webAfter = await row(t, web.uuid);
      await revoke(t, web.uuid, bearer(web.token)).expect(204);
      expect(await row(t, web.uuid)).toEqual(webAfter);

      // The same when another device signs them out, and for a pending session whose code expired.
      expect((await row(t, desktop.uuid)).status).toBe('confirmed');
      await revoke(t, desktop.uuid, bearer(phone.token)).expect(204);
      expect(await row(t, desktop.uuid)).toMatchObject({ status: 'expired', ended_at: t.clock.now() });
      await revoke(t, codeExpired.uuid, bearer(codeExpired.token)).expect(204);
      expect(await row(t, codeExpired.uuid)).toMatchObject({ status: 'expired', ended_at: t.clock.now(), otp_hash: null });
    });

    it('signs out another device of the same user with a confirmed session\'s token', async () => {
      const email = uniqueEmail('sign-out');
      const phone = await createConfirmedSession(t, mobi(email, vendor()));
      const laptop = await createConfirmedSession(t, othr(email));
      const tablet = await createPendingSession(t, mobi(email, vendor()));

      await revoke(t, laptop.uuid, bearer(phone.token)).expect(204);
      expect(await row(t, laptop.uuid)).toMatchObject({ status: 'revoked', ended_at: t.clock.now() });
      expectUnauthorized(await getCurrent(t, bearer(laptop.token)));
      expect((await getCurrent(t, bearer(phone.token)).expect(200)).body.uuid).toBe(phone.uuid);
      const after = await row(t, laptop.uuid);
      await revoke(t, laptop.uuid, bearer(phone.token)).expect(204);
      expect(await row(t, laptop.uuid)).toEqual(after);

      await revoke(t, tablet.uuid, bearer(phone.token)).expect(204);
      expect((await row(t, tablet.uuid)).status).toBe('revoked');
      expect((await confirm(t, tablet.uuid, tablet.token, tablet.code).expect(400)).body).toEqual(errorBody(400, 'session_revoked'));

      const listed = await listSessions(t, bearer(phone.token)).expect(200);
      expect(listed.body.sessions.map((s: Json) => s.uuid)).toEqual([phone.uuid]);
    });

    it('answers 404 for another user\'s session or an unknown one, and changes nothing', async () => {
      const mine = await createConfirmedSession(t, mobi(uniqueEmail('sign-out-404'), vendor()));
      const theirs = await createConfirmedSession(t, mobi(uniqueEmail('sign-out-404-other'), vendor()));
      const theirsPending = await createPendingSession(t, othr(theirs.body.user.email));
      for (const target of [theirs, theirsPending]) {
        const before = await row(t, target.uuid);
        expect((await revoke(t, target.uuid, bearer(mine.token)).expect(404)).body).toEqual(errorBody(404, 'session_not_found'));
        expect(await row(t, target.uuid)).toEqual(before);
      }
      expect((await revoke(t, UNKNOWN_SESSION, bearer(mine.token)).expect(404)).body).toEqual(errorBody(404, 'session_not_found'));
      await getCurrent(t, bearer(theirs.token)).expect(200);
    });

    it('answers 401 when the token is unknown, or not a live confirmed session of the same user, and changes nothing', async () => {
      const email = uniqueEmail('sign-out-401');
      const target = await createConfirmedSession(t, mobi(email, vendor()));
      const pending = await createPendingSession(t, mobi(email, vendor()));
      const loggedOut = await createConfirmedSession(t, mobi(email, vendor()));
      await revoke(t, loggedOut.uuid, bearer(loggedOut.token)).expect(204);
      const exhausted = await createPendingSession(t, mobi(email, vendor()));
      await exhaustAttempts(t, exhausted);
      const web = await createConfirmedSession(t, othr(email));
      t.clock.advance(OTHR_TTL); // `web` is past expires_at; `target` (mobi) has no expiry

      const before = await row(t, target.uuid);
      for (const [name, token] of [
        ['unknown', unknownToken()],
        ['pending', pending.token],
        ['revoked', loggedOut.token],
        ['expired by wrong codes', exhausted.token],
        ['confirmed but past expires_at', web.token],
      ]) {
        const res = await revoke(t, target.uuid, bearer(token));
        expect({ name, status: res.status }).toEqual({ name, status: 401 });
        expectUnauthorized(res);
      }
      expectUnauthorized(await revoke(t, UNKNOWN_SESSION, bearer(unknownToken())));
      expect(await row(t, target.uuid)).toEqual(before);
    });

    it('checks the Authorization header (401, guard) before the id format (400, pipe)', async () => {
      const session = await createConfirmedSession(t, mobi(uniqueEmail('delete-order'), vendor()));
      for (const id of ['abc', 'ses-', 'ses-123', session.uuid.slice(4), `usr-${session.uuid.slice(4)}`, `${session.uuid}x`]) {
        for (const authorization of [undefined, 'Basic x', bearer(session.token)]) {
          const res = await revoke(t, encodeURIComponent(id), authorization);
          const wellFormed = authorization?.startsWith('Bearer ');
          expect({ id, authorization, status: res.status, body: res.body }).toEqual({
            id,
            authorization,
            status: wellFormed ? 400 : 401,
            body: wellFormed ? errorBody(400, 'validation_failed', { fields: ['uuid'] }) : errorBody(401, 'unauthorized'),
          });
        }
      }
      for (const authorization of [undefined, '', 'Basic x', 'Bearer', `Bearer ${session.token} x`]) {
        expectUnauthorized(await revoke(t, session.uuid, authorization));
        expectUnauthorized(await revoke(t, UNKNOWN_SESSION, authorization));
      }
      expect((await row(t, session.uuid)).status).toBe('confirmed');
      // The id is case-insensitive like any UUID.
      await revoke(t, `ses-${session.uuid.slice(4).toUpperCase()}`, bearer(session.token)).expect(204);
      expect((await row(t, session.uuid)).status).toBe('revoked');
    });

    it('refuses a token revoked in one request on the very next request, on every endpoint', async () => {
      const email = uniqueEmail('revoked-next');
      const device = vendor();
      const other = await createConfirmedSession(t, mobi(email, vendor()));
      const session = await createConfirmedSession(t, mobi(email, device));
      await getCurrent(t, bearer(session.token)).expect(200);
      await listSessions(t, bearer(session.token)).expect(200);

      await revoke(t, session.uuid, bearer(session.token)).expect(204);

      expectUnauthorized(await getCurrent(t, bearer(session.token)));
      expectUnauthorized(await listSessions(t, bearer(session.token)));
      const otherBefore = await row(t, other.uuid);
      expectUnauthorized(await revoke(t, other.uuid, bearer(session.token)));
      expect(await row(t, other.uuid)).toEqual(otherBefore);
      expect((await confirm(t, session.uuid, session.token, session.code).expect(400)).body).toEqual(errorBody(400, 'session_revoked'));
      expect((await resend(t, session.uuid, bearer(session.token)).expect(409)).body).toEqual(errorBody(409, 'session_not_pending'));
      // POST /sessions does not hand the revoked session back: it starts a new one.
      t.clock.advance(COOLDOWN + 1);
      const seen = t.smtp.countTo(email);
      const restarted = await startLogin(t, mobi(email, device), session.token).expect(201);
      expect(restarted.body.uuid).not.toBe(session.uuid);
      expect(restarted.body.token).not.toBe(session.token);
      expect(restarted.body.status).toBe('pending');
      await nextCode(t, email, seen);
      expect((await row(t, session.uuid)).status).toBe('revoked');
    });

    it('refuses a session\'s token on the next request once another device signed it out', async () => {
      const email = uniqueEmail('revoked-by-other');
      const phone = await createConfirmedSession(t, mobi(email, vendor()));
      const laptop = await createConfirmedSession(t, othr(email));
      await getCurrent(t, bearer(laptop.token)).expect(200);
      await revoke(t, laptop.uuid, bearer(phone.token)).expect(204);
      expectUnauthorized(await getCurrent(t, bearer(laptop.token)));
      expectUnauthorized(await listSessions(t, bearer(laptop.token)));
      expectUnauthorized(await revoke(t, phone.uuid, bearer(laptop.token)));
      expect((await confirm(t, laptop.uuid, laptop.token, laptop.code).expect(400)).body).toEqual(errorBody(400, 'session_revoked'));
      expect((await row(t, phone.uuid)).status).toBe('confirmed');
    });
  });

  describe('POST /sessions/{uuid}/otp', () => {
    it('sends a new code: 202, the old code stops working, attempts reset, new expiry', async () => {
      const email = uniqueEmail('resend');
      const session = await createPendingSession(t, mobi(email, vendor()));
      const wrong = wrongCode(session.code);
      expect((await confirm(t, session.uuid, session.token, wrong).expect(400)).body.attempts_remaining).toBe(4);
      expect((await confirm(t, session.uuid, session.token, wrong).expect(400)).body.attempts_remaining).toBe(3);
      const before = await row(t, session.uuid);
      t.clock.advance(COOLDOWN + 1);

      const seen = t.smtp.countTo(email);
      const res = await resend(t, session.uuid, bearer(session.token)).expect(202);
      const newExpiry = new Date(t.clock.now().getTime() + OTP_TTL * 1000);
      expect(Object.keys(res.body)).toEqual(['uuid', 'otp_expires_at']);
      expect(res.body).toEqual({ uuid: session.uuid, otp_expires_at: newExpiry.toISOString() });
      const newCode = await nextCode(t, email, seen);
      expect(t.smtp.countTo(email)).toBe(seen + 1);

      const after = await row(t, session.uuid);
      expect(after).toMatchObject({ status: 'pending', otp_attempts_left: 5, otp_expires_at: newExpiry });
      expect(after.otp_hash).toBeInstanceOf(Buffer);
      expect(Buffer.compare(after.otp_hash, before.otp_hash)).not.toBe(0);
      expect(after.token_hash).toEqual(before.token_hash);
      expect(await sendsOf(t, session.uuid)).toBe(2);

      // Past the first code's expiry, within the new one's.
      t.clock.advance(OTP_TTL - COOLDOWN);
      expect(t.clock.now() > new Date(session.body.otp_expires_at)).toBe(true);
      if (newCode !== session.code) {
        // (The two codes coincide once in a million; then the old code is the new one.)
        expect((await confirm(t, session.uuid, session.token, session.code).expect(400)).body).toEqual(
          errorBody(400, 'otp_invalid', { attempts_remaining: 4 }),
        );
      }
      const confirmed = await confirm(t, session.uuid, session.token, newCode).expect(200);
      expect(confirmed.body).toMatchObject({ uuid: session.uuid, status: 'confirmed', otp_expires_at: newExpiry.toISOString() });
    });

    it('answers 429 with Retry-After within the cooldown after the previous send, and changes nothing', async () => {
      const email = uniqueEmail('resend-cooldown');
      const session = await createPendingSession(t, mobi(email, vendor()));
      const before = await row(t, session.uuid);

      let res = await resend(t, session.uuid, bearer(session.token)).expect(429);
      expect(res.body).toEqual(errorBody(429, 'rate_limited', { retry_after: COOLDOWN }));
      expect(res.headers['retry-after']).toBe(String(COOLDOWN));
      t.clock.advance(45);
      res = await resend(t, session.uuid, bearer(session.token)).expect(429);
      expect(res.body).toEqual(errorBody(429, 'rate_limited', { retry_after: 15 }));
      expect(res.headers['retry-after']).toBe('15');
      expect(await row(t, session.uuid)).toEqual(before);
      expect(await sendsOf(t, session.uuid)).toBe(1);

      t.clock.advance(15); // exactly the cooldown after the first send
      const seen = t.smtp.countTo(email);
      await resend(t, session.uuid, bearer(session.token)).expect(202);
      await nextCode(t, email, seen);
      // The cooldown now counts from this resend.
      t.clock.advance(10);
      res = await resend(t, session.uuid, bearer(session.token)).expect(429);
      expect(res.headers['retry-after']).toBe(String(COOLDOWN - 10));
      expect(await sendsOf(t, session.uuid)).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(t.smtp.countTo(email)).toBe(seen + 1);
    });

    it('answers 429 once the email address had OTP_MAX_SENDS_PER_HOUR (10) codes in the last hour', async () => {
      const email = uniqueEmail('resend-cap');
      const session = await createPendingSession(t, mobi(email, vendor()));
      for (let i = 2; i <= 10; i++) {
        t.clock.advance(COOLDOWN + 1);
        await resend(t, session.uuid, bearer(session.token)).expect(202);
        await nextCode(t, email, i - 1);
      }
      t.clock.advance(COOLDOWN + 1);
      const before = await row(t, session.uuid);
      const res = await resend(t, session.uuid, bearer(session.token)).expect(429);
      const retryAfter = 3600 - 10 * (COOLDOWN + 1); // until the first of the ten sends is an hour old
      expect(res.body).toEqual(errorBody(429, 'rate_limited', { retry_after: retryAfter }));
      expect(res.headers['retry-after']).toBe(String(retryAfter));
      expect(await row(t, session.uuid)).toEqual(before);
      expect(await sendsOf(t, session.uuid)).toBe(10);
      expect(t.smtp.countTo(email)).toBe(10);
    });

    it('answers 409 session_not_pending for a confirmed, expired or revoked session, or one whose code expired', async () => {
      const email = uniqueEmail('resend-409');
      const confirmed = await createConfirmedSession(t, mobi(email, vendor()));
      const revoked = await createPendingSession(t, mobi(email, vendor()));
      await revoke(t, revoked.uuid, bearer(revoked.token)).expect(204);
      const exhausted = await createPendingSession(t, mobi(email, vendor()));
      await exhaustAttempts(t, exhausted);

      // Within the cooldown of every one of them: the state is checked first.
      for (const [name, session] of [['confirmed', confirmed], ['revoked', revoked], ['expired', exhausted]] as const) {
        const before = await row(t, session.uuid);
        const res = await resend(t, session.uuid, bearer(session.token));
        expect({ name, status: res.status, body: res.body }).toEqual({ name, status: 409, body: errorBody(409, 'session_not_pending') });
        expect({ name, row: await row(t, session.uuid) }).toEqual({ name, row: before });
      }

      // A code that expired: the refusal changes nothing, so the next PATCH still tells the client
      // otp_expired (once), and only then session_expired.
      const late = await createPendingSession(t, mobi(email, vendor()));
      t.clock.advance(OTP_TTL);
      const beforeResend = await row(t, late.uuid);
      expect((await resend(t, late.uuid, bearer(late.token)).expect(409)).body).toEqual(errorBody(409, 'session_not_pending'));
      expect(await row(t, late.uuid)).toEqual(beforeResend);
      expect(beforeResend).toMatchObject({ status: 'pending' });
      expect((await confirm(t, late.uuid, late.token, late.code).expect(400)).body).toEqual(errorBody(400, 'otp_expired'));
      expect(await row(t, late.uuid)).toMatchObject({ status: 'expired', otp_hash: null, ended_at: t.clock.now() });
      expect((await confirm(t, late.uuid, late.token, late.code).expect(400)).body).toEqual(errorBody(400, 'session_expired'));

      const confirmedLater = await createConfirmedSession(t, othr(email));
      t.clock.advance(COOLDOWN + 1);
      expect((await resend(t, confirmedLater.uuid, bearer(confirmedLater.token)).expect(409)).body).toEqual(errorBody(409, 'session_not_pending'));

      for (const s of [confirmed, revoked, exhausted, late, confirmedLater]) expect(await sendsOf(t, s.uuid)).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(t.smtp.countTo(email)).toBe(5);
    });

    it('checks the Authorization header (401), the id (400), existence (404) and the token (401), in that order', async () => {
      const email = uniqueEmail('resend-auth');
      const session = await createPendingSession(t, mobi(email, vendor()));
      const sibling = await createConfirmedSession(t, othr(email));
      t.clock.advance(COOLDOWN + 1);
      const before = await row(t, session.uuid);

      for (const id of ['abc', 'ses-123', session.uuid.slice(4)]) {
        expectUnauthorized(await resend(t, id, undefined)); // the guard first
        const res = await resend(t, id, bearer(session.token));
        expect({ id, status: res.status, body: res.body }).toEqual({
          id,
          status: 400,
          body: errorBody(400, 'validation_failed', { fields: ['uuid'] }),
        });
      }
      for (const authorization of [undefined, '', 'Bearer', `Basic ${session.token}`, `Bearer ${session.token} x`]) {
        expectUnauthorized(await resend(t, session.uuid, authorization));
        expectUnauthorized(await resend(t, UNKNOWN_SESSION, authorization));
      }
      expect((await resend(t, UNKNOWN_SESSION, bearer(session.token)).expect(404)).body).toEqual(errorBody(404, 'session_not_found'));
      expectUnauthorized(await resend(t, session.uuid, bearer(sibling.token))); // another session's token, even the same user's
      expectUnauthorized(await resend(t, session.uuid, bearer(unknownToken())));

      expect(await row(t, session.uuid)).toEqual(before);
      expect(await sendsOf(t, session.uuid)).toBe(1);
      await resend(t, session.uuid, bearer(session.token)).expect(202);
    });
  });
});
