import { randomBytes } from 'node:crypto';
import { createConnection, createServer } from 'node:net';
import request from 'supertest';
import { createTestApp, type TestApp } from './support/test-app.js';
import { createConfirmedSession, createPendingSession, errorBody, mobi, othr, sessionRow, startLogin, uniqueEmail } from './support/factories.js';

/**
 * What the errors say (issue #13): a 401 says what is wrong with the token that was sent, without
 * saying more than its holder can know; a malformed session id names the path parameter in
 * `fields`; and the client address stored with a session is written in one form per client.
 */

const bearer = (token: string) => `Bearer ${token}`;
const OTHR_TTL = 7_200;

describe('401 messages', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  const current = (authorization?: string) => {
    const call = request(t.http).get('/sessions/current');
    return authorization === undefined ? call : call.set('Authorization', authorization);
  };

  /** 401 `unauthorized` with `WWW-Authenticate: Bearer` and exactly this message. */
  function expect401(res: request.Response, message: string): void {
    expect({ status: res.status, body: res.body }).toEqual({ status: 401, body: { ...errorBody(401, 'unauthorized'), message } });
    expect(res.headers['www-authenticate']).toBe('Bearer');
  }

  it('no usable Authorization header: says what to send', async () => {
    for (const authorization of [undefined, 'Basic abc', 'Bearer']) {
      expect401(await current(authorization), 'Send Authorization: Bearer <token>, with the token returned when the session was started.');
    }
  });

  it('an unknown token: says it is not valid, nothing about any session', async () => {
    expect401(
      await current(bearer(randomBytes(32).toString('base64url'))),
      'The bearer token is not valid (unknown, or its session was deleted); start a new login.',
    );
  });

  it('the right token of a pending session: says the session is not confirmed yet, not "send a token"', async () => {
    const pending = await createPendingSession(t, mobi(uniqueEmail('msg-pending')));
    const res = await current(bearer(pending.token));
    expect401(res, 'The session of this token is not confirmed yet: confirm it with the emailed code (PATCH /sessions/{uuid}).');
    // The same for the other endpoints that need a confirmed session.
    expect401(await request(t.http).get('/sessions').set('Authorization', bearer(pending.token)), res.body.message);
  });

  it('the right token of a revoked session: says it was revoked', async () => {
    const session = await createConfirmedSession(t, othr(uniqueEmail('msg-revoked')));
    await request(t.http).delete(`/sessions/${session.uuid}`).set('Authorization', bearer(session.token)).expect(204);
    expect401(await current(bearer(session.token)), 'The session of this token has been revoked; start a new login.');
  });

  it('the right token of a session past its expiry: says it expired', async () => {
    const session = await createConfirmedSession(t, othr(uniqueEmail('msg-expired')));
    t.clock.advance(OTHR_TTL + 1);
    expect401(await current(bearer(session.token)), 'The session of this token has expired; start a new login.');
  });

  it('another session\'s token on PATCH and POST …/otp: says it is not this session\'s token, and nothing of the other one', async () => {
    const email = uniqueEmail('msg-other');
    const target = await createPendingSession(t, mobi(email));
    const other = await createConfirmedSession(t, othr(email));
    const message = 'The bearer token is not the token of this session.';
    expect401(await request(t.http).patch(`/sessions/${target.uuid}`).set('Authorization', bearer(other.token)).send({ otp_code: target.code }), message);
    expect401(await request(t.http).post(`/sessions/${target.uuid}/otp`).set('Authorization', bearer(other.token)), message);
    expect((await sessionRow(t, target.uuid)).status).toBe('pending');
  });

  it('a pending session cannot sign another session out, and is told why', async () => {
    const email = uniqueEmail('msg-signout');
    const confirmed = await createConfirmedSession(t, othr(email));
    const pending = await createPendingSession(t, mobi(email));
    expect401(
      await request(t.http).delete(`/sessions/${confirmed.uuid}`).set('Authorization', bearer(pending.token)),
      'The session of this token is not confirmed yet: confirm it with the emailed code (PATCH /sessions/{uuid}).',
    );
    expect((await sessionRow(t, confirmed.uuid)).status).toBe('confirmed');
  });
});

describe('a malformed session id', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it.each([
    ['PATCH', (id: string) => request(t.http).patch(`/sessions/${id}`).set('Authorization', bearer('x')).send({ otp_code: '123456' })],
    ['POST …/otp', (id: string) => request(t.http).post(`/sessions/${id}/otp`).set('Authorization', bearer('x'))],
    ['DELETE', (id: string) => request(t.http).delete(`/sessions/${id}`).set('Authorization', bearer('x'))],
  ])('%s: 400 validation_failed with fields ["uuid"], as the README promises', async (_name, call) => {
    for (const id of ['abc', 'usr-0f8fad5b-d9cb-469f-a165-70867728950e', 'ses-123']) {
      const res = await call(id);
      expect({ id, status: res.status, body: res.body }).toEqual({
        id,
        status: 400,
        body: { ...errorBody(400, 'validation_failed'), message: 'The session id in the path must look like ses-<uuid>.', fields: ['uuid'] },
      });
    }
  });
});

/** Whether this machine gives an IPv4 client of a dual-stack (`::`) server an IPv4-mapped address. */
async function dualStackMapsIpv4(): Promise<boolean> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '::', resolve));
  } catch {
    return false; // no IPv6 here: sockets are IPv4 only, nothing is mapped
  }
  const port = (server.address() as { port: number }).port;
  const seen = new Promise<string | undefined>((resolve) => server.once('connection', (socket) => resolve(socket.remoteAddress)));
  const client = createConnection({ host: '127.0.0.1', port });
  const address = await seen;
  client.destroy();
  await new Promise((resolve) => server.close(resolve));
  return address === '::ffff:127.0.0.1';
}

describe('client_ip: IPv4-mapped IPv6 addresses are stored as IPv4', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ TRUST_PROXY: '1' });
  });
  afterAll(() => t.close());

  it('an IPv4 client of the server listening on :: (dual stack) is stored as 127.0.0.1', async (context) => {
    if (!(await dualStackMapsIpv4())) context.skip(); // the case cannot arise on an IPv4-only machine
    await t.app.listen(0, '::');
    const { port } = t.app.getHttpServer().address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/sessions?mode=email`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(othr(uniqueEmail('mapped'))),
    });
    expect(res.status).toBe(201);
    const { uuid } = (await res.json()) as { uuid: string };
    expect((await sessionRow(t, uuid)).client_ip).toBe('127.0.0.1');
  });

  it.each([
    ['::ffff:203.0.113.9', '203.0.113.9'],
    ['::FFFF:198.51.100.7', '198.51.100.7'],
    ['2001:db8::1', '2001:db8::1'], // other IPv6 addresses stay as they are
  ])('X-Forwarded-For %s from a trusted proxy is stored as %s', async (forwarded, stored) => {
    const res = await startLogin(t, othr(uniqueEmail('mapped-xff'))).set('X-Forwarded-For', forwarded).expect(201);
    expect((await sessionRow(t, res.body.uuid)).client_ip).toBe(stored);
  });
});
