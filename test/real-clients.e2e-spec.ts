import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { countRows, createPendingSession, errorBody, mailSettled, mobi, othr, patchSession } from './support/factories.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * What real clients send (issue #12): one mailbox under several spellings, and JSON objects that
 * name a member twice. (Uploads far over the body limit: deployment.e2e-spec.ts, against a server
 * in a process of its own, where the reset they used to get shows.)
 */
describe('real clients', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ OTP_MAX_SENDS_PER_HOUR: '3' });
  });
  afterAll(() => t.close());

  let tag = 0;
  /** A local part used by no other test. */
  const local = () => `joe${++tag}-${process.pid}`;

  describe('one mailbox, one user: email addresses are normalized (NFC, lower case, IDNA A-label domain)', () => {
    it('the A-label, NFC and NFD spellings of one address are one user, stored, returned and mailed to as the A-label form', async () => {
      const name = local();
      const spellings = [`${name}@bücher.example`, `${name}@bu\u0308cher.example`, ` ${name.toUpperCase()}@XN--BCHER-KVA.example `];
      const normalized = `${name}@xn--bcher-kva.example`;
      const bodies = [];
      for (const [i, email] of spellings.entries()) {
        const res = await request(t.http).post('/sessions?mode=email').send(mobi(email, randomUUID())).expect(201);
        expect(res.body.user.email).toBe(normalized);
        expect(res.body.is_new_user).toBe(i === 0);
        bodies.push(res.body);
      }
      expect(new Set(bodies.map((body) => body.user.uuid)).size).toBe(1);
      expect(await t.db.query(`SELECT email FROM users WHERE email LIKE $1`, [`${name}@%`])).toEqual([{ email: normalized }]);

      await mailSettled(t);
      // On the wire (RCPT TO) exactly the stored address; smtp-server shows the header decoded.
      const mails = t.smtp.messages.filter((m) => m.rcptTo.some((to) => to.startsWith(`${name}@`)));
      expect(mails.map((m) => m.rcptTo)).toEqual([[normalized], [normalized], [normalized]]);
    });

    it('the hourly cap per address counts every spelling: the 4th code in an hour is refused (OTP_MAX_SENDS_PER_HOUR=3)', async () => {
      const name = local();
      for (const email of [`${name}@bücher.example`, `${name}@bu\u0308cher.example`, `${name}@xn--bcher-kva.example`]) {
        await request(t.http).post('/sessions?mode=email').send(mobi(email, randomUUID())).expect(201);
      }
      const refused = await request(t.http).post('/sessions?mode=email').send(othr(`${name.toUpperCase()}@BÜCHER.EXAMPLE`));
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ statusCode: 429, code: 'rate_limited' });
    });

    it.each([
      ['a control character in a quoted local part', '"jo\u0001e"@example.com'],
      ['a NUL byte', 'jo\u0000e@example.com'],
      ['DEL', 'jo\u007fe@example.com'],
      ['a line break inside', 'jo\ne@example.com'],
      ['a zero-width space (an address that looks like jo e@)', 'jo\u200be@example.com'],
      ['a right-to-left override', 'joe\u202e@example.com'],
      ['a byte order mark inside', 'jo\ufeffe@example.com'],
      ['a line separator (U+2028)', 'jo\u2028e@example.com'],
      ['a combining grapheme joiner (U+034F)', 'jo\u034fe@example.com'],
      ['a no-break space', 'jo\u00a0e@example.com'],
    ])('%s → 400 validation_failed naming user.email, nothing created', async (_case, email) => {
      const before = await countRows(t);
      const res = await request(t.http).post('/sessions?mode=email').send(othr(email));
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorBody(400, 'validation_failed', { fields: ['user.email'] }));
      expect(res.body.message).toContain('user.email must not contain control characters or invisible formatting characters');
      expect(await countRows(t)).toEqual(before);
    });

    it('a domain with no IDNA A-label → 400 validation_failed naming user.email', async () => {
      const res = await request(t.http).post('/sessions?mode=email').send(othr('joe@exa mple.com'));
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorBody(400, 'validation_failed', { fields: ['user.email'] }));
    });

    it('an xn-- label that is not valid Punycode (xn--zz) → 400 validation_failed naming user.email, nothing stored', async () => {
      const before = await countRows(t);
      for (const email of ['joe@xn--zz.example', 'joe@mail.xn--abc-.example']) {
        const res = await request(t.http).post('/sessions?mode=email').send(othr(email));
        expect({ email, status: res.status, body: res.body }).toEqual({
          email,
          status: 400,
          body: errorBody(400, 'validation_failed', { fields: ['user.email'] }),
        });
      }
      expect(await countRows(t)).toEqual(before);
    });
  });

  describe('a JSON object that names a member twice → 400 validation_failed naming it (never last-one-wins)', () => {
    const post = (text: string) => request(t.http).post('/sessions?mode=email').set('Content-Type', 'application/json').send(text);

    it.each([
      ['two "user" members', `{"user":{"email":"first@example.com"},"device":{"type":"othr"},"user":{"email":"second@example.com"}}`, 'user'],
      ['two "email" members in "user"', `{"user":{"email":"first@example.com","email":"second@example.com"},"device":{"type":"othr"}}`, 'user.email'],
      ['two "type" members, one escaped', `{"user":{"email":"first@example.com"},"device":{"type":"othr","\\u0074ype":"mobi"}}`, 'device.type'],
    ])('POST /sessions with %s', async (_case, text, member) => {
      const before = await countRows(t);
      const res = await post(text);
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorBody(400, 'validation_failed', { fields: [member] }));
      expect(res.body.message).toBe(`property ${member} must appear only once`);
      expect(await countRows(t)).toEqual(before);
    });

    it('PATCH /sessions/{uuid} with two "otp_code" members: refused, no attempt used, the session stays pending', async () => {
      const pending = await createPendingSession(t, othr(`${local()}@example.com`));
      const res = await patchSession(t, pending.uuid, {
        authorization: `Bearer ${pending.token}`,
        body: `{"otp_code":"${pending.code === '000000' ? '111111' : '000000'}","otp_code":"${pending.code}"}`,
      });
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorBody(400, 'validation_failed', { fields: ['otp_code'] }));
      const [row] = await t.db.query(`SELECT status, otp_attempts_left FROM sessions WHERE id = $1`, [pending.uuid.replace(/^ses-/, '')]);
      expect(row).toEqual({ status: 'pending', otp_attempts_left: 5 });
    });
  });
});
