import { createHash, randomBytes, randomUUID } from 'node:crypto';
import request from 'supertest';
import {
  confirm,
  countRows,
  createConfirmedSession,
  createPendingSession,
  errorBody,
  type LoginBody,
  mailSettled,
  mobi,
  othr,
  sessionRow,
  startLogin,
  uniqueEmail,
  wrongCode,
} from './support/factories.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * POST /sessions?mode=email (SPEC.md, "POST /sessions?mode=email — start (or resume) a login"):
 * mode, normalization, user/device identity, reuse with the token, cooldown, hourly cap, mail
 * refusal, concurrency and what is stored. Real HTTP, real PostgreSQL, real SMTP server, fake clock.
 * Every test uses its own email address, so tests share no user, device or send limit.
 * Codes are mailed by a queue after the request (mail_outbox, then graphile-worker, in PostgreSQL): mail counts are read after
 * `mailSettled`, which also runs before the clock moves past a queued code's expiry.
 */

const SESSION_KEYS = [
  'uuid', 'created_at', 'token', 'is_new_user', 'is_new_device', 'user', 'device', 'status',
  'otp_expires_at', 'confirmed_at', 'expires_at',
];
const TOKEN_SYNTAX = /^[A-Za-z0-9_-]{43,}$/;
/** Per-IP request limits are not what these tests are about (every request comes from 127.0.0.1). */
const BASE_ENV = { RATE_LIMIT_PER_MINUTE: '0' };

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Asserts a JSON error with exactly this status, code and extra fields. */
function expectError(res: request.Response, status: number, code: string, extra: Record<string, unknown> = {}): void {
  expect({ status: res.status, body: res.body }).toEqual({ status, body: errorBody(status, code, extra) });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

/** A 429 `rate_limited` whose `Retry-After` header (and `retry_after` field) is exactly `seconds`. */
function expectRateLimited(res: request.Response, seconds: number): void {
  expectError(res, 429, 'rate_limited', { retry_after: seconds });
  expect(res.headers['retry-after']).toBe(String(seconds));
}

/** Users, devices and sessions rows of one (normalized) email address. */
async function rowsOf(t: TestApp, email: string): Promise<{ users: number; devices: number; sessions: number }> {
  const [row] = await t.db.query<{ users: number; devices: number; sessions: number }>(
    `SELECT (SELECT count(*) FROM users WHERE email = $1)::int AS users,
            (SELECT count(*) FROM devices d JOIN users u ON u.id = d.user_id WHERE u.email = $1)::int AS devices,
            (SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1)::int AS sessions`,
    [email],
  );
  return row;
}

const statusOf = async (t: TestApp, uuid: string): Promise<string> => (await sessionRow(t, uuid)).status as string;

describe('POST /sessions?mode=email', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(BASE_ENV);
  });
  afterAll(() => t.close());

  describe('mode', () => {
    it.each([
      ['missing', '/sessions'],
      ['empty', '/sessions?mode='],
      ['another mode', '/sessions?mode=sms'],
      ['upper case', '/sessions?mode=EMAIL'],
      ['repeated', '/sessions?mode=email&mode=email'],
      ['repeated with another value', '/sessions?mode=email&mode=sms'],
      ['an array', '/sessions?mode[]=email'],
    ])('%s (%s) → 400 unsupported_mode, nothing created or sent', async (_name, path) => {
      const before = await countRows(t);
      const mails = t.smtp.messages.length;
      const res = await request(t.http).post(path).send(mobi(uniqueEmail('mode')));
      expectError(res, 400, 'unsupported_mode');
      expect(await countRows(t)).toEqual(before);
      expect(t.smtp.messages.length).toBe(mails);
    });
  });

  describe('a new login (201)', () => {
    it('answers the SPEC shape and stores exactly what it answers', async () => {
      const email = uniqueEmail('shape');
      const vendor = randomUUID();
      const now = t.clock.now().toISOString();
      const res = await startLogin(t, mobi(email, vendor));
      expect(res.status).toBe(201);
      expect(Object.keys(res.body)).toEqual(SESSION_KEYS);
      expect(res.body).toEqual({
        uuid: expect.stringMatching(/^ses-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
        created_at: now,
        token: expect.stringMatching(TOKEN_SYNTAX),
        is_new_user: true,
        is_new_device: true,
        user: { uuid: expect.stringMatching(/^usr-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/), email },
        device: {
          uuid: expect.stringMatching(/^dev-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
          type: 'mobi',
          vendor_uuid: vendor,
        },
        status: 'pending',
        otp_expires_at: new Date(Date.parse(now) + 300_000).toISOString(),
        confirmed_at: null,
        expires_at: null,
      });

      const row = await sessionRow(t, res.body.uuid);
      expect(row).toMatchObject({
        user_id: res.body.user.uuid.slice(4),
        device_id: res.body.device.uuid.slice(4),
        status: 'pending',
        otp_attempts_left: 5,
        confirmed_at: null,
        expires_at: null,
      });
      expect((row.created_at as Date).toISOString()).toBe(now);
      expect((row.otp_expires_at as Date).toISOString()).toBe(res.body.otp_expires_at);
      const [device] = await t.db.query(`SELECT user_id, type, vendor_uuid FROM devices WHERE id = $1`, [
        res.body.device.uuid.slice(4),
      ]);
      expect(device).toEqual({ user_id: res.body.user.uuid.slice(4), type: 'mobi', vendor_uuid: vendor });

      expect(await t.smtp.codeFor(email)).toMatch(/^\d{6}$/);
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(1);
    });

    it('trims and lower-cases the email: the normalized form is stored, returned and mailed to', async () => {
      const email = uniqueEmail('Norm.Alice');
      const normalized = email.toLowerCase();
      const written = `  \t${email.toUpperCase()}  \n`;
      const res = await startLogin(t, mobi(written, randomUUID())).expect(201);
      expect(res.body.user.email).toBe(normalized);
      expect(await t.db.query(`SELECT email FROM users WHERE id = $1`, [res.body.user.uuid.slice(4)])).toEqual([
        { email: normalized },
      ]);
      expect(await t.db.query(`SELECT email FROM users WHERE lower(email) = $1`, [normalized])).toHaveLength(1);
      await mailSettled(t);
      expect(t.smtp.countTo(normalized)).toBe(1);

      // Any other spelling of the same address is the same user.
      const again = await startLogin(t, othr(` ${email} `)).expect(201);
      expect(again.body.user).toEqual(res.body.user);
      expect(again.body.is_new_user).toBe(false);
      expect(await rowsOf(t, normalized)).toEqual({ users: 1, devices: 2, sessions: 2 });
    });

    it('accepts an address of 253 characters written with spaces and capitals around it', async () => {
      const tag = randomBytes(4).toString('hex');
      const email = `${tag}${'a'.repeat(55)}@${'B'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.com`;
      expect(email).toHaveLength(253);
      const res = await startLogin(t, othr(`   ${email}   `)).expect(201);
      expect(res.body.user.email).toBe(email.toLowerCase());
      await mailSettled(t);
      expect(t.smtp.countTo(email.toLowerCase())).toBe(1);
    });

    it('accepts an address of exactly 254 characters once trimmed', async () => {
      const tag = randomBytes(4).toString('hex');
      const email = `${tag}${'a'.repeat(56)}@${'B'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.com`;
      expect(email).toHaveLength(254);
      const res = await startLogin(t, othr(`   ${email}   `)).expect(201);
      expect(res.body.user.email).toBe(email.toLowerCase());
      expect(await t.db.query(`SELECT length(email)::int AS n FROM users WHERE email = $1`, [email.toLowerCase()])).toEqual([
        { n: 254 },
      ]);
      // (The test SMTP server, smtp-server, refuses recipients over 253 characters: that mail is dropped.)
      await mailSettled(t);
    });

    it('stores a mobi vendor_uuid lower-case; the upper-case spelling is the same device', async () => {
      const email = uniqueEmail('vendor-case');
      const vendor = randomUUID();
      const first = await startLogin(t, mobi(email, vendor.toUpperCase())).expect(201);
      expect(first.body.device.vendor_uuid).toBe(vendor);
      expect(await t.db.query(`SELECT vendor_uuid::text AS v FROM devices WHERE id = $1`, [first.body.device.uuid.slice(4)]))
        .toEqual([{ v: vendor }]);

      t.clock.advance(60);
      const second = await startLogin(t, mobi(email, vendor)).expect(201);
      expect(second.body.device).toEqual(first.body.device);
      expect(second.body.is_new_device).toBe(false);

      t.clock.advance(60);
      const mixed = vendor.slice(0, 18).toUpperCase() + vendor.slice(18);
      const third = await startLogin(t, mobi(email, mixed)).expect(201);
      expect(third.body.device).toEqual(first.body.device);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 1, sessions: 3 });
    });
  });

  describe('is_new_user / is_new_device', () => {
    it('say truthfully whether this request created the user and the device', async () => {
      const email = uniqueEmail('flags');
      const [v1, v2] = [randomUUID(), randomUUID()];

      const newUser = await startLogin(t, mobi(email, v1)).expect(201);
      expect(newUser.body).toMatchObject({ is_new_user: true, is_new_device: true });

      const newDevice = await startLogin(t, mobi(email, v2)).expect(201);
      expect(newDevice.body).toMatchObject({ is_new_user: false, is_new_device: true });
      expect(newDevice.body.user).toEqual(newUser.body.user);
      expect(newDevice.body.device.uuid).not.toBe(newUser.body.device.uuid);

      t.clock.advance(60);
      const sameDevice = await startLogin(t, mobi(email, v1)).expect(201);
      expect(sameDevice.body).toMatchObject({ is_new_user: false, is_new_device: false });
      expect(sameDevice.body.device).toEqual(newUser.body.device);
      expect(sameDevice.body.uuid).not.toBe(newUser.body.uuid);

      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 2, sessions: 3 });
    });

    it('othr without vendor_uuid: one device per user, whatever client asks', async () => {
      const email = uniqueEmail('othr-one');
      const first = await startLogin(t, othr(email)).expect(201);
      expect(first.body).toMatchObject({ is_new_user: true, is_new_device: true, device: { type: 'othr', vendor_uuid: null } });

      // A second browser of the same user is the same othr device: within its cooldown.
      expectRateLimited(await startLogin(t, othr(email)), 60);

      t.clock.advance(60);
      const second = await startLogin(t, othr(email)).expect(201);
      expect(second.body).toMatchObject({ is_new_user: false, is_new_device: false });
      expect(second.body.device).toEqual(first.body.device);
      expect(await t.db.query(`SELECT count(*)::int AS n FROM devices WHERE user_id = $1`, [first.body.user.uuid.slice(4)]))
        .toEqual([{ n: 1 }]);
    });

    it('othr with a vendor_uuid is another device, and stays that device', async () => {
      const email = uniqueEmail('othr-vendor');
      const vendor = randomUUID();
      const plain = await startLogin(t, othr(email)).expect(201);
      const withVendor = await startLogin(t, othr(email, vendor)).expect(201);
      expect(withVendor.body).toMatchObject({
        is_new_user: false,
        is_new_device: true,
        device: { type: 'othr', vendor_uuid: vendor },
      });
      expect(withVendor.body.device.uuid).not.toBe(plain.body.device.uuid);

      const otherVendor = await startLogin(t, othr(email, randomUUID())).expect(201);
      expect(otherVendor.body.is_new_device).toBe(true);

      // The same vendor_uuid as a mobi device is yet another device (type is part of the identity).
      const asMobi = await startLogin(t, mobi(email, vendor)).expect(201);
      expect(asMobi.body.is_new_device).toBe(true);
      expect(asMobi.body.device.uuid).not.toBe(withVendor.body.device.uuid);

      t.clock.advance(60);
      const again = await startLogin(t, othr(email, vendor.toUpperCase())).expect(201);
      expect(again.body.is_new_device).toBe(false);
      expect(again.body.device).toEqual(withVendor.body.device);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 4, sessions: 5 });
    });
  });

  describe('reuse with the Bearer token of this very device (200)', () => {
    it('a pending session (code unexpired, attempts left) is returned unchanged; nothing is created or sent', async () => {
      const email = uniqueEmail('reuse-pending');
      const body = mobi(email, randomUUID());
      const pending = await createPendingSession(t, body);
      const before = await countRows(t);
      const rowBefore = await sessionRow(t, pending.uuid);

      t.clock.advance(10); // within the cooldown: reuse is not a send, so it is not limited
      const res = await startLogin(t, body, pending.token);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ...pending.body, is_new_user: false, is_new_device: false });
      expect(await countRows(t)).toEqual(before);
      expect(await sessionRow(t, pending.uuid)).toEqual(rowBefore);
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(1);

      // The code mailed first still confirms it.
      await confirm(t, pending.uuid, pending.token, pending.code).expect(200);
    });

    it('the same device written differently (email case and spaces, vendor_uuid case) is still this device', async () => {
      const email = uniqueEmail('reuse-spelling');
      const vendor = randomUUID();
      const pending = await createPendingSession(t, mobi(email, vendor));
      const res = await startLogin(t, mobi(`  ${email.toUpperCase()} `, vendor.toUpperCase()), pending.token);
      expect(res.status).toBe(200);
      expect(res.body.uuid).toBe(pending.uuid);
      expect(res.body.token).toBe(pending.token);
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(1);
    });

    it('a pending session with wrong attempts left is reused as it is (attempts not reset)', async () => {
      const email = uniqueEmail('reuse-attempts');
      const body = othr(email);
      const pending = await createPendingSession(t, body);
      await confirm(t, pending.uuid, pending.token, wrongCode(pending.code)).expect(400);
      const res = await startLogin(t, body, pending.token).expect(200);
      expect(res.body.uuid).toBe(pending.uuid);
      expect((await sessionRow(t, pending.uuid)).otp_attempts_left).toBe(4);
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(1);
    });

    it('a pending session one second before its code expires is still reused', async () => {
      const email = uniqueEmail('reuse-edge');
      const body = mobi(email, randomUUID());
      const pending = await createPendingSession(t, body);
      await mailSettled(t);
      t.clock.advance(299);
      const res = await startLogin(t, body, pending.token).expect(200);
      expect(res.body.uuid).toBe(pending.uuid);
    });

    it('a confirmed session is returned unchanged, with its token; nothing is created or sent', async () => {
      for (const body of [mobi(uniqueEmail('reuse-confirmed'), randomUUID()), othr(uniqueEmail('reuse-confirmed-othr'))]) {
        const confirmed = await createConfirmedSession(t, body);
        const before = await countRows(t);
        t.clock.advance(120); // past the cooldown: still no new session
        const res = await startLogin(t, body, confirmed.token);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(confirmed.body);
        expect(res.body).toMatchObject({ status: 'confirmed', token: confirmed.token, is_new_user: false, is_new_device: false });
        expect(await countRows(t)).toEqual(before);
        await mailSettled(t);
        expect(t.smtp.countTo(body.user.email)).toBe(1);
      }
    });

    it('ten parallel reuses of one token all get the same session, and nothing is sent', async () => {
      const email = uniqueEmail('reuse-parallel');
      const body = mobi(email, randomUUID());
      const pending = await createPendingSession(t, body);
      const results = await Promise.all(Array.from({ length: 10 }, () => startLogin(t, body, pending.token)));
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
      for (const r of results) expect(r.body).toEqual({ ...pending.body, is_new_user: false, is_new_device: false });
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 1, sessions: 1 });
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(1);
    });
  });

  describe('a token that names no reusable session of this device is ignored (anonymous)', () => {
    /** Asserts a new session on `body`'s device: 201, a token and uuid other than `notOf`'s. */
    async function expectNewSession(body: LoginBody, token: string | undefined, notOf: { uuid: string; token: string }[]) {
      await mailSettled(t);
      const mails = t.smtp.countTo(body.user.email.trim().toLowerCase());
      const res = await startLogin(t, body, token);
      expect(res.status).toBe(201);
      expect(res.body.status).toBe('pending');
      for (const other of notOf) {
        expect(res.body.uuid).not.toBe(other.uuid);
        expect(res.body.token).not.toBe(other.token);
        expect(JSON.stringify(res.body)).not.toContain(other.token);
      }
      await mailSettled(t);
      expect(t.smtp.countTo(body.user.email.trim().toLowerCase())).toBe(mails + 1);
      return res;
    }

    it('the token of another device of the same user', async () => {
      const email = uniqueEmail('anon-other-device');
      const a = mobi(email, randomUUID());
      const b = mobi(email, randomUUID());
      const onA = await createPendingSession(t, a);
      const onB = await createPendingSession(t, b);

      // A's own cooldown applies: the request was not taken as A's session.
      const before = await countRows(t);
      expectRateLimited(await startLogin(t, a, onB.token), 60);
      expect(await countRows(t)).toEqual(before);

      t.clock.advance(60);
      const res = await expectNewSession(a, onB.token, [onA, onB]);
      expect(res.body.device).toEqual(onA.body.device);
    });

    it('the token of the user\'s othr device presented for a mobi device, and the reverse', async () => {
      const email = uniqueEmail('anon-type');
      const vendor = randomUUID();
      const browser = await createPendingSession(t, othr(email, vendor));
      const phone = await createPendingSession(t, mobi(email, vendor));
      t.clock.advance(60);
      await expectNewSession(mobi(email, vendor), browser.token, [browser, phone]);
      await expectNewSession(othr(email, vendor), phone.token, [browser, phone]);
    });

    it('the token of the user\'s othr device without vendor_uuid, presented for an othr device with one', async () => {
      const email = uniqueEmail('anon-othr');
      const plain = await createPendingSession(t, othr(email));
      const res = await expectNewSession(othr(email, randomUUID()), plain.token, [plain]);
      expect(res.body.is_new_device).toBe(true);
    });

    it('the token of another user, on a device with the same vendor_uuid', async () => {
      const vendor = randomUUID();
      const joe = await createPendingSession(t, mobi(uniqueEmail('anon-joe'), vendor));
      const res = await expectNewSession(mobi(uniqueEmail('anon-ann'), vendor), joe.token, [joe]);
      expect(res.body).toMatchObject({ is_new_user: true, is_new_device: true });
      expect(res.body.user.uuid).not.toBe(joe.body.user.uuid);
    });

    it('an unknown token', async () => {
      const body = mobi(uniqueEmail('anon-unknown'), randomUUID());
      const pending = await createPendingSession(t, body);
      const unknown = randomBytes(32).toString('base64url');
      expectRateLimited(await startLogin(t, body, unknown), 60);
      t.clock.advance(60);
      await expectNewSession(body, unknown, [pending]);
    });

    it('malformed Authorization headers, even when they hold the right token', async () => {
      const body = mobi(uniqueEmail('anon-malformed'), randomUUID());
      const pending = await createPendingSession(t, body);
      const token = pending.token;
      const malformed = [
        `Basic ${token}`,
        `Token ${token}`,
        token,
        `Bearer${token}`,
        `Bearer\t${token}`,
        `Bearer ${token}!`,
        `Bearer "${token}"`,
        `Bearer ${token} ${token}`,
        `Bearer ${token},Bearer ${token}`,
        `Bearer ${token}${'A'.repeat(600)}`,
        'Bearer',
        '',
      ];
      const before = await countRows(t);
      for (const authorization of malformed) {
        const res = await request(t.http).post('/sessions?mode=email').set('Authorization', authorization).send(body);
        // Taken as anonymous, so the device's cooldown answers (a reuse would be 200).
        expectRateLimited(res, 60);
      }
      expect(await countRows(t)).toEqual(before);

      t.clock.advance(60);
      const res = await request(t.http).post('/sessions?mode=email').set('Authorization', `Basic ${token}`).send(body);
      expect(res.status).toBe(201);
      expect(res.body.token).not.toBe(token);
    });

    it('the token of a pending session whose code has expired (still pending in the database)', async () => {
      const body = mobi(uniqueEmail('anon-otp-expired'), randomUUID());
      const pending = await createPendingSession(t, body);
      await mailSettled(t);
      t.clock.advance(300);
      expect(await statusOf(t, pending.uuid)).toBe('pending');
      await expectNewSession(body, pending.token, [pending]);
    });

    it('the token of an expired session', async () => {
      const body = othr(uniqueEmail('anon-expired'));
      const pending = await createPendingSession(t, body);
      await mailSettled(t);
      t.clock.advance(301);
      await confirm(t, pending.uuid, pending.token, pending.code).expect(400);
      expect(await statusOf(t, pending.uuid)).toBe('expired');
      await expectNewSession(body, pending.token, [pending]);
    });

    it('the token of a revoked session (replaced by a later confirmed one on the device)', async () => {
      const body = mobi(uniqueEmail('anon-revoked'), randomUUID());
      const first = await createPendingSession(t, body);
      t.clock.advance(60);
      const second = await createConfirmedSession(t, body);
      expect(await statusOf(t, first.uuid)).toBe('revoked');

      t.clock.advance(60);
      await expectNewSession(body, first.token, [first, second]);
      // The live one is still reused.
      expect((await startLogin(t, body, second.token).expect(200)).body.uuid).toBe(second.uuid);
    });

    it('the token of a session whose attempts are exhausted', async () => {
      const body = mobi(uniqueEmail('anon-attempts'), randomUUID());
      const pending = await createPendingSession(t, body);
      for (let i = 0; i < 5; i += 1) await confirm(t, pending.uuid, pending.token, wrongCode(pending.code)).expect(400);
      expect(await sessionRow(t, pending.uuid)).toMatchObject({ status: 'expired', otp_attempts_left: 0 });

      expectRateLimited(await startLogin(t, body, pending.token), 60);
      t.clock.advance(60);
      await expectNewSession(body, pending.token, [pending]);
    });

    it('the token of a confirmed othr session past its expires_at', async () => {
      const body = othr(uniqueEmail('anon-othr-expired'));
      const confirmed = await createConfirmedSession(t, body);
      await mailSettled(t);
      t.clock.advance(7199);
      expect((await startLogin(t, body, confirmed.token).expect(200)).body.uuid).toBe(confirmed.uuid);
      t.clock.advance(1);
      await expectNewSession(body, confirmed.token, [confirmed]);
    });
  });

  describe('knowing the email and vendor_uuid never yields an existing session', () => {
    it('a device with a pending session: a request without its token gets a new session', async () => {
      const body = mobi(uniqueEmail('steal-pending'), randomUUID());
      const victim = await createPendingSession(t, body);
      t.clock.advance(60);
      const res = await startLogin(t, body).expect(201);
      expect(res.body.uuid).not.toBe(victim.uuid);
      expect(res.body.token).not.toBe(victim.token);
      expect(JSON.stringify(res.body)).not.toContain(victim.token);
      expect(res.body.status).toBe('pending');
      expect(await statusOf(t, victim.uuid)).toBe('pending');
    });

    it('a device with a confirmed session: a request without its token gets a new pending session', async () => {
      for (const body of [mobi(uniqueEmail('steal-confirmed'), randomUUID()), othr(uniqueEmail('steal-confirmed-othr'))]) {
        const victim = await createConfirmedSession(t, body);
        t.clock.advance(60);
        const res = await startLogin(t, body).expect(201);
        expect(res.body).toMatchObject({ status: 'pending', confirmed_at: null, expires_at: null });
        expect(res.body.uuid).not.toBe(victim.uuid);
        expect(res.body.token).not.toBe(victim.token);
        expect(JSON.stringify(res.body)).not.toContain(victim.token);
        expect(await statusOf(t, victim.uuid)).toBe('confirmed');
      }
    });
  });

  describe('cooldown per device (OTP_RESEND_COOLDOWN, default 60 s)', () => {
    it('answers 429 with Retry-After until 60 s have passed, creating and sending nothing', async () => {
      const email = uniqueEmail('cooldown');
      const body = mobi(email, randomUUID());
      await startLogin(t, body).expect(201);
      await mailSettled(t);
      const before = await countRows(t);

      expectRateLimited(await startLogin(t, body), 60);
      t.clock.advance(30);
      expectRateLimited(await startLogin(t, body), 30);
      t.clock.advance(10.5);
      expectRateLimited(await startLogin(t, body), 20); // whole seconds, rounded up
      t.clock.advance(18.5);
      expectRateLimited(await startLogin(t, body), 1);

      expect(await countRows(t)).toEqual(before);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 1, sessions: 1 });
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(1);

      t.clock.advance(1); // exactly Retry-After later
      const res = await startLogin(t, body).expect(201);
      expect(res.body).toMatchObject({ is_new_user: false, is_new_device: false });
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(2);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 1, sessions: 2 });
    });

    it('is per device: another device of the same user starts at once', async () => {
      const email = uniqueEmail('cooldown-device');
      await startLogin(t, mobi(email, randomUUID())).expect(201);
      await startLogin(t, mobi(email, randomUUID())).expect(201);
      await startLogin(t, othr(email)).expect(201);
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(3);
    });

    it('is per user: another user with the same vendor_uuid starts at once', async () => {
      const vendor = randomUUID();
      await startLogin(t, mobi(uniqueEmail('cooldown-joe'), vendor)).expect(201);
      await startLogin(t, mobi(uniqueEmail('cooldown-ann'), vendor)).expect(201);
    });

    it('a refused request on a new device of a known user creates no device', async () => {
      const email = uniqueEmail('cooldown-nodevice');
      await startLogin(t, othr(email)).expect(201);
      const before = await rowsOf(t, email);
      expectRateLimited(await startLogin(t, othr(email)), 60);
      expect(await rowsOf(t, email)).toEqual(before);
    });
  });

  describe('hourly cap per email address (OTP_MAX_SENDS_PER_HOUR, default 10)', () => {
    it('10 starts on 10 devices succeed; the 11th gets 429 with Retry-After until the hour has passed', async () => {
      const email = uniqueEmail('cap');
      const bodies: LoginBody[] = [
        ...Array.from({ length: 6 }, () => mobi(email, randomUUID())),
        othr(email),
        ...Array.from({ length: 3 }, () => othr(email, randomUUID())),
      ];
      for (const body of bodies) await startLogin(t, body).expect(201);
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(10);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 10, sessions: 10 });

      const eleventh = mobi(email, randomUUID());
      expectRateLimited(await startLogin(t, eleventh), 3600);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 10, sessions: 10 });

      t.clock.advance(600);
      expectRateLimited(await startLogin(t, eleventh), 3000);
      // A known device past its own cooldown is held by the cap too.
      expectRateLimited(await startLogin(t, bodies[0]), 3000);

      t.clock.advance(2999);
      expectRateLimited(await startLogin(t, eleventh), 1);
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(10);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 10, sessions: 10 });

      t.clock.advance(1); // the first ten sends are now an hour old
      const res = await startLogin(t, eleventh).expect(201);
      expect(res.body).toMatchObject({ is_new_user: false, is_new_device: true });
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(11);
    });

    it('counts a rolling hour: sends leave the window one by one', async () => {
      const email = uniqueEmail('cap-rolling');
      const bodies = Array.from({ length: 11 }, () => mobi(email, randomUUID()));
      for (let i = 0; i < 10; i += 1) {
        await startLogin(t, bodies[i]).expect(201);
        await mailSettled(t);
        t.clock.advance(60);
      }
      // Sends at 0, 60, …, 540 s; now 600 s: the oldest leaves the window at 3600 s.
      expectRateLimited(await startLogin(t, bodies[10]), 3000);
      t.clock.advance(3000);
      await startLogin(t, bodies[10]).expect(201);
      // Now the sends at 60…540 and 3600 are in the window: the next slot opens at 60 + 3600.
      expectRateLimited(await startLogin(t, bodies[0]), 60);
    });

    it('holds under concurrency: 15 parallel starts on 15 devices → exactly 10 sessions', async () => {
      const email = uniqueEmail('cap-parallel');
      const results = await Promise.all(Array.from({ length: 15 }, () => startLogin(t, mobi(email, randomUUID()))));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([...Array(10).fill(201), ...Array(5).fill(429)]);
      for (const r of results.filter((x) => x.status === 429)) expectRateLimited(r, 3600);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 10, sessions: 10 });
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(10);
    });
  });

  describe('an SMTP server that refuses the mail', () => {
    // The code is mailed by a queue after the request, so SPEC's "while mail is sent during the
    // request … 503 mail_unavailable" does not arise: the request succeeds whatever the SMTP server
    // says later (the queue's own rules are covered by mail-delivery.e2e-spec.ts).
    afterEach(() => {
      t.smtp.refuse = false;
    });

    it('never fails the request: 201 with a pending session, and the refused mail is not retried', async () => {
      const email = uniqueEmail('mail-refused');
      const body = mobi(email, randomUUID());
      t.smtp.refuse = true;
      const refusedBefore = t.smtp.refused;
      const res = await startLogin(t, body);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ status: 'pending', user: { email } });
      await mailSettled(t);
      expect(t.smtp.refused).toBe(refusedBefore + 1);
      expect(t.smtp.countTo(email)).toBe(0);
      expect(await statusOf(t, res.body.uuid)).toBe('pending');
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 1, sessions: 1 });
    });
  });

  describe('concurrency', () => {
    it('10 parallel first logins of one new mobi device: one 201, nine 429, one user, device and session', async () => {
      const email = uniqueEmail('race-device');
      const body = mobi(email, randomUUID());
      const results = await Promise.all(Array.from({ length: 10 }, () => startLogin(t, body)));
      expect(results.map((r) => r.status).sort()).toEqual([201, ...Array(9).fill(429)]);
      const created = results.find((r) => r.status === 201)!;
      expect(created.body).toMatchObject({ is_new_user: true, is_new_device: true });
      for (const r of results.filter((x) => x.status === 429)) expectRateLimited(r, 60);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 1, sessions: 1 });
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(1);
    });

    it('10 parallel first logins of one new email on 10 devices: ten 201, exactly one new user', async () => {
      const email = uniqueEmail('race-user');
      const results = await Promise.all(Array.from({ length: 10 }, () => startLogin(t, mobi(email, randomUUID()))));
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(201));
      expect(results.filter((r) => r.body.is_new_user === true)).toHaveLength(1);
      expect(results.every((r) => r.body.is_new_device === true)).toBe(true);
      expect(new Set(results.map((r) => r.body.user.uuid)).size).toBe(1);
      expect(new Set(results.map((r) => r.body.device.uuid)).size).toBe(10);
      expect(new Set(results.map((r) => r.body.token)).size).toBe(10);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 10, sessions: 10 });
      await mailSettled(t);
      expect(t.smtp.countTo(email)).toBe(10);
    });

    it('10 parallel first logins of one new othr device (no vendor_uuid): one device, one session', async () => {
      const email = uniqueEmail('race-othr');
      const results = await Promise.all(Array.from({ length: 10 }, () => startLogin(t, othr(email))));
      expect(results.map((r) => r.status).sort()).toEqual([201, ...Array(9).fill(429)]);
      expect(await rowsOf(t, email)).toEqual({ users: 1, devices: 1, sessions: 1 });
    });
  });

  describe('secrets at rest', () => {
    /**
     * `schema.table.column` of every value, in every table of every schema (the application's and
     * the mail queue's), that equals `exact` or contains one of `parts`.
     */
    async function rowsHolding(exact: string, parts: string[]): Promise<string[]> {
      const tables = await t.db.query<{ schema: string; name: string }>(
        `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
          WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
      );
      expect(tables.map((x) => `${x.schema}.${x.name}`)).toEqual(
        expect.arrayContaining(['public.users', 'public.devices', 'public.sessions', 'public.mail_outbox']),
      );
      const found: string[] = [];
      for (const { schema, name } of tables) {
        const rows = await t.db.query<{ col: string }>(
          `SELECT e.key AS col FROM "${schema}"."${name}" x, jsonb_each_text(to_jsonb(x)) e
            WHERE e.value = $1 OR EXISTS (SELECT 1 FROM unnest($2::text[]) p WHERE strpos(e.value, p) > 0)`,
          [exact, parts],
        );
        found.push(...rows.map((r) => `${schema}.${name}.${r.col}`));
      }
      return found;
    }

    it('stores the token only as its 32-byte SHA-256 and the code only as a 32-byte keyed hash', async () => {
      const email = uniqueEmail('secrets');
      const body = mobi(email, randomUUID());
      // The SMTP server holds its answer, so the mail job is still in the queue once the code is known.
      t.smtp.delayMs = 1_500;
      let started: request.Response;
      let code: string;
      try {
        started = await startLogin(t, body).expect(201);
        code = await t.smtp.codeFor(email);
      } finally {
        t.smtp.delayMs = 0;
      }
      const { token, uuid } = started.body as { token: string; uuid: string };
      expect(token).toMatch(TOKEN_SYNTAX);
      expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(32);

      const row = await sessionRow(t, uuid);
      expect(Buffer.isBuffer(row.token_hash)).toBe(true);
      expect(row.token_hash).toEqual(sha256(token));
      const otpHash = row.otp_hash as Buffer;
      expect(Buffer.isBuffer(otpHash)).toBe(true);
      expect(otpHash.length).toBe(32);
      expect(otpHash.equals(sha256(code))).toBe(false); // keyed, not a bare hash of 10^6 guessable values
      expect(otpHash.equals(sha256(`${uuid.slice(4)}:${code}`))).toBe(false);

      const secretForms = (value: string) => [
        value,
        Buffer.from(value, 'utf8').toString('hex'),
        Buffer.from(value, 'utf8').toString('base64'),
      ];
      const tokenForms = [...secretForms(token), Buffer.from(token, 'base64url').toString('hex')];
      const codeForms = [`"${code}"`, `:${code}`, `: ${code}`, Buffer.from(code, 'utf8').toString('hex')];
      const leaks = async () => [
        ...(await rowsHolding(code, [...tokenForms, ...codeForms])),
        ...(await rowsHolding(token, [])),
      ];

      // While the mail job is queued (the code travels sealed) …
      expect(await t.db.query(`SELECT count(*)::int AS n FROM mail_outbox`)).not.toEqual([{ n: 0 }]);
      expect(await leaks()).toEqual([]);
      // … after it was sent …
      await mailSettled(t);
      expect(await leaks()).toEqual([]);
      // … and after reuse and confirmation, which store nothing more and erase the code's hash.
      await startLogin(t, body, token).expect(200);
      await confirm(t, uuid, token, code).expect(200);
      const confirmed = await sessionRow(t, uuid);
      expect(confirmed.otp_hash).toBeNull();
      expect(confirmed.token_hash).toEqual(sha256(token));
      expect(await leaks()).toEqual([]);
    });

    it('gives every session its own token and code hash', async () => {
      const email = uniqueEmail('secrets-unique');
      const results = await Promise.all(Array.from({ length: 5 }, () => startLogin(t, mobi(email, randomUUID()))));
      const tokens = results.map((r) => r.body.token as string);
      expect(new Set(tokens).size).toBe(5);
      const rows = await t.db.query<{ token_hash: Buffer; otp_hash: Buffer }>(
        `SELECT s.token_hash, s.otp_hash FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1`,
        [email],
      );
      expect(new Set(rows.map((r) => r.token_hash.toString('hex'))).size).toBe(5);
      expect(new Set(rows.map((r) => r.otp_hash.toString('hex'))).size).toBe(5);
      expect(rows.map((r) => r.token_hash.toString('hex')).sort()).toEqual(tokens.map((x) => sha256(x).toString('hex')).sort());
    });
  });
});

describe('POST /sessions?mode=email with OTP_RESEND_COOLDOWN=0', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ...BASE_ENV, OTP_RESEND_COOLDOWN: '0' });
  });
  afterAll(() => t.close());

  it('has no cooldown: one device may start again at once, but the hourly cap still holds', async () => {
    const email = uniqueEmail('no-cooldown');
    const body = mobi(email, randomUUID());
    const tokens = new Set<string>();
    for (let i = 0; i < 10; i += 1) {
      const res = await startLogin(t, body).expect(201);
      expect(res.body.is_new_device).toBe(i === 0);
      tokens.add(res.body.token);
    }
    expect(tokens.size).toBe(10);
    await mailSettled(t);
    expect(t.smtp.countTo(email)).toBe(10);
    const [row] = await t.db.query(
      `SELECT count(*)::int AS sessions, count(DISTINCT s.device_id)::int AS devices
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1`,
      [email],
    );
    expect(row).toEqual({ sessions: 10, devices: 1 });

    const res = await startLogin(t, body);
    expect(res.status).toBe(429);
    expect(res.body).toEqual(errorBody(429, 'rate_limited', { retry_after: 3600 }));
    expect(res.headers['retry-after']).toBe('3600');
  });
});

describe('POST /sessions?mode=email with OTP_MAX_SENDS_PER_HOUR=2', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ...BASE_ENV, OTP_MAX_SENDS_PER_HOUR: '2' });
  });
  afterAll(() => t.close());

  it('caps at the configured number, across device types, per email address', async () => {
    const email = uniqueEmail('cap-two');
    await startLogin(t, mobi(email, randomUUID())).expect(201);
    await startLogin(t, othr(email)).expect(201);
    const res = await startLogin(t, othr(email, randomUUID()));
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('3600');
    // Another address is not affected.
    await startLogin(t, othr(uniqueEmail('cap-two-other'))).expect(201);
  });
});
