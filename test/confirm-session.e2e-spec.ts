import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type request from 'supertest';
import {
  confirm,
  createConfirmedSession,
  createPendingSession,
  type LoginBody,
  mobi,
  othr,
  patchSession,
  sessionRow,
  startLogin,
  uniqueEmail,
  wrongCode,
} from './support/factories.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * PATCH /sessions/{uuid} (SPEC.md, "PATCH /sessions/{uuid} — confirm with the OTP"), through the
 * real HTTP stack, a real PostgreSQL and a real SMTP server. Every test uses its own email address.
 */

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SESSION_KEYS = [
  'uuid', 'created_at', 'token', 'is_new_user', 'is_new_device', 'user', 'device', 'status',
  'otp_expires_at', 'confirmed_at', 'expires_at',
];
/** Per-IP request limits are not what these tests are about (many requests come from 127.0.0.1). */
const BASE_ENV = { RATE_LIMIT_PER_MINUTE: '0' };

/** Asserts the exact error body `{"statusCode","error","code","message", ...extra}`. */
function expectError(res: request.Response, status: number, code: string, extra: Record<string, unknown> = {}): void {
  expect({ status: res.status, body: res.body }).toEqual({
    status,
    body: { statusCode: status, error: STATUS_CODES[status], code, message: expect.any(String), ...extra },
  });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

/** 400 validation_failed whose `fields` are exactly the offending ones (in any order). */
function expectValidationFailed(res: request.Response, ...fields: string[]): void {
  expectError(res, 400, 'validation_failed', { fields: expect.any(Array) });
  expect([...res.body.fields].sort()).toEqual([...fields].sort());
}

function expectUnauthorized(res: request.Response): void {
  expectError(res, 401, 'unauthorized');
  expect(res.headers['www-authenticate']).toBe('Bearer');
}

const iso = (value: unknown): string | null => (value === null ? null : (value as Date).toISOString());

const plus = (isoTime: string, seconds: number): string => new Date(Date.parse(isoTime) + seconds * 1000).toISOString();

async function statusOf(t: TestApp, uuid: string): Promise<string> {
  return (await sessionRow(t, uuid)).status as string;
}

/** Makes every `clock.now()` call 1 ms later than the previous one, so that two writes never share a time. */
function tickingClock(t: TestApp): () => void {
  const base = t.clock.now().getTime();
  let ticks = 0;
  const original = t.clock.now;
  t.clock.now = () => new Date(base + ++ticks);
  return () => {
    t.clock.now = original;
    t.clock.advance((ticks + 1000) / 1000);
  };
}

describe('PATCH /sessions/{uuid} — confirm with the OTP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp(BASE_ENV);
  });
  afterAll(() => t.close());

  describe('checks run in the framework\'s order: Authorization syntax (401, guard), id format (400, pipe), body (400, pipe), existence (404), token ownership (401)', () => {
    const BAD_IDS = [
      'abc',
      'ses-',
      'ses-123',
      '0f8fad5b-d9cb-469f-a165-70867728950e',
      'usr-0f8fad5b-d9cb-469f-a165-70867728950e',
      'dev-0f8fad5b-d9cb-469f-a165-70867728950e',
      'ses-0f8fad5b-d9cb-469f-a165-70867728950',
      'ses-0f8fad5b-d9cb-469f-a165-70867728950e0',
      'ses-0f8fad5bd9cb469fa16570867728950e',
      'ses-0f8fad5b-d9cb-469f-a165-70867728950g',
      'ses-{0f8fad5b-d9cb-469f-a165-70867728950e}',
      'ses-%200f8fad5b-d9cb-469f-a165-70867728950e',
      "ses-0f8fad5b-d9cb-469f-a165-70867728950e'--",
    ];

    it.each(BAD_IDS)('an id not of the form ses-<uuid> (%j) → 400 validation_failed naming uuid, after Authorization and before the body', async (id) => {
      // Without a well-formed Authorization the guard answers first, whatever the id and body.
      expectUnauthorized(await patchSession(t, id, { body: { otp_code: 123456 } }));
      expectUnauthorized(await patchSession(t, id, { authorization: 'Basic abc', body: {} }));
      // With one, the id is reported, not the invalid body; `fields` names the path parameter, as for a
      // body field (README "Errors").
      expectValidationFailed(await patchSession(t, id, { authorization: 'Bearer abc', body: { otp_code: 123456 } }), 'uuid');
      expectValidationFailed(await patchSession(t, id, { authorization: 'Bearer abc', body: {} }), 'uuid');
      expectValidationFailed(await patchSession(t, id, { authorization: 'Bearer abc', body: { otp_code: '123456' } }), 'uuid');
    });

    it('an id that is a real session id with another prefix or garbage appended → 400 validation_failed, and the session is untouched', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const before = await sessionRow(t, s.uuid);
      const bare = s.uuid.slice('ses-'.length);
      for (const id of [bare, `usr-${bare}`, `${s.uuid}x`, `${s.uuid}-1`]) {
        expectValidationFailed(await patchSession(t, id, { authorization: `Bearer ${s.token}`, body: { otp_code: s.code } }), 'uuid');
      }
      expect(await sessionRow(t, s.uuid)).toEqual(before);
    });

    const BAD_AUTHORIZATION: [string, string | undefined][] = [
      ['missing', undefined],
      ['empty', ''],
      ['scheme only', 'Bearer'],
      ['scheme and a space', 'Bearer '],
      ['another scheme', 'Basic dXNlcjpwYXNz'],
      ['token without scheme', 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ'],
      ['two tokens', 'Bearer abc def'],
      ['characters outside b64token', 'Bearer tok!en'],
      ['a token far too long', `Bearer ${'a'.repeat(600)}`],
    ];

    it.each(BAD_AUTHORIZATION)(
      'Authorization %s → 401 unauthorized, before the id, the body and existence, and nothing changes',
      async (_label, authorization) => {
        const s = await createPendingSession(t, mobi(uniqueEmail()));
        const before = await sessionRow(t, s.uuid);
        // An invalid body does not matter yet...
        expectUnauthorized(await patchSession(t, s.uuid, { authorization, body: { otp_code: 123456 } }));
        // ...nor whether the session exists, nor even whether the id is well-formed...
        expectUnauthorized(await patchSession(t, `ses-${randomUUID()}`, { authorization, body: { otp_code: [] } }));
        expectUnauthorized(await patchSession(t, 'ses-123', { authorization, body: { otp_code: [] } }));
        // ...and even the right code does not confirm without a well-formed Authorization.
        expectUnauthorized(await patchSession(t, s.uuid, { authorization, body: { otp_code: s.code } }));
        expectUnauthorized(await patchSession(t, s.uuid, { authorization, body: { otp_code: wrongCode(s.code) } }));
        expect(await sessionRow(t, s.uuid)).toEqual(before);
      },
    );

    it('an invalid body → 400 validation_failed before existence: an unknown session with a bad body is 400, not 404', async () => {
      const authorization = `Bearer ${'A'.repeat(43)}`;
      for (const body of [{ otp_code: 123456 }, {}]) {
        expectValidationFailed(await patchSession(t, `ses-${randomUUID()}`, { authorization, body }), 'otp_code');
      }
    });

    it('a well-formed id that names no session → 404 session_not_found, before token ownership', async () => {
      const other = await createPendingSession(t, mobi(uniqueEmail()));
      for (const token of [other.token, 'A'.repeat(43)]) {
        expectError(await confirm(t, `ses-${randomUUID()}`, token, '123456'), 404, 'session_not_found');
      }
      // The id is case-insensitive hex: an upper-case form of an unknown id is still just unknown.
      expectError(await confirm(t, `ses-${randomUUID().toUpperCase()}`, other.token, '123456'), 404, 'session_not_found');
      expect(await statusOf(t, other.uuid)).toBe('pending');
    });

    it("a token that is not this session's → 401 unauthorized, even with the right code, and nothing changes", async () => {
      const email = uniqueEmail();
      const s = await createPendingSession(t, mobi(email));
      const sameUserOtherDevice = await createPendingSession(t, othr(email));
      const otherUser = await createConfirmedSession(t, mobi(uniqueEmail()));
      const before = await sessionRow(t, s.uuid);

      for (const token of [sameUserOtherDevice.token, otherUser.token, 'A'.repeat(43), `${s.token}x`]) {
        expectUnauthorized(await confirm(t, s.uuid, token, s.code));
        expectUnauthorized(await confirm(t, s.uuid, token, wrongCode(s.code)));
      }
      expect(await sessionRow(t, s.uuid)).toEqual(before);

      // None of those counted as an attempt: the first wrong code with its own token leaves 4.
      expectError(await confirm(t, s.uuid, s.token, wrongCode(s.code)), 400, 'otp_invalid', { attempts_remaining: 4 });
      await confirm(t, s.uuid, s.token, s.code).expect(200);
      // The other sessions were not touched either.
      expect(await statusOf(t, sameUserOtherDevice.uuid)).toBe('pending');
      expect(await statusOf(t, otherUser.uuid)).toBe('confirmed');
    });

    it("token ownership is checked before the session's state: an ended session with a foreign token → 401, not its state error", async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const other = await createPendingSession(t, mobi(uniqueEmail()));
      t.clock.advance(301);
      expectError(await confirm(t, s.uuid, s.token, s.code), 400, 'otp_expired');
      expectUnauthorized(await confirm(t, s.uuid, other.token, s.code));
    });

    it('a session id is accepted in upper case too (the UUID is case-insensitive)', async () => {
      const s = await createPendingSession(t, othr(uniqueEmail()));
      const upper = `ses-${s.uuid.slice(4).toUpperCase()}`;
      const res = await confirm(t, upper, s.token, s.code).expect(200);
      expect(res.body.uuid).toBe(s.uuid);
    });
  });

  describe('otp_code must be a JSON string of exactly 6 ASCII digits; anything else → 400 and is not an attempt', () => {
    const MALFORMED: [string, unknown, string[]][] = [
      ['a number (123456)', { otp_code: 123456 }, ['otp_code']],
      ['5 digits', { otp_code: '12345' }, ['otp_code']],
      ['7 digits', { otp_code: '1234567' }, ['otp_code']],
      ['a letter among digits', { otp_code: '12a456' }, ['otp_code']],
      ['null', { otp_code: null }, ['otp_code']],
      ['an array', { otp_code: ['123456'] }, ['otp_code']],
      ['an object', { otp_code: { code: '123456' } }, ['otp_code']],
      ['a boolean', { otp_code: true }, ['otp_code']],
      ['missing (empty object)', {}, ['otp_code']],
      ['fullwidth digits', { otp_code: '１２３４５６' }, ['otp_code']],
      ['Arabic-Indic digits', { otp_code: '١٢٣٤٥٦' }, ['otp_code']],
      ['an empty string', { otp_code: '' }, ['otp_code']],
      ['a leading space', { otp_code: ' 123456' }, ['otp_code']],
      ['a trailing newline', { otp_code: '123456\n' }, ['otp_code']],
      ['a sign', { otp_code: '+12345' }, ['otp_code']],
      ['a misspelled property', { otpCode: '123456' }, ['otpCode', 'otp_code']],
    ];

    it.each(MALFORMED)('otp_code %s → 400 validation_failed; the session is unchanged', async (_label, body, fields) => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const before = await sessionRow(t, s.uuid);
      expectValidationFailed(await patchSession(t, s.uuid, { authorization: `Bearer ${s.token}`, body }), ...fields);
      expect(await sessionRow(t, s.uuid)).toEqual(before);
    });

    it('an unknown extra field → 400 validation_failed naming it, even next to the right code; not an attempt, not a confirmation', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const before = await sessionRow(t, s.uuid);
      expectValidationFailed(
        await patchSession(t, s.uuid, { authorization: `Bearer ${s.token}`, body: { otp_code: s.code, remember_me: true } }),
        'remember_me',
      );
      expect(await sessionRow(t, s.uuid)).toEqual(before);
    });

    it('a body that is not a JSON object (array, no body at all) → 400 validation_failed; the session is unchanged', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const before = await sessionRow(t, s.uuid);
      const auth = `Bearer ${s.token}`;
      const arrayBody = `[{"otp_code":"${s.code}"}]`;
      expectError(await patchSession(t, s.uuid, { authorization: auth, body: arrayBody }), 400, 'validation_failed', { fields: [] });
      expectError(await patchSession(t, s.uuid, { authorization: auth }), 400, 'validation_failed', { fields: [] });
      expect(await sessionRow(t, s.uuid)).toEqual(before);
    });

    it('after every kind of malformed code, all OTP_MAX_ATTEMPTS attempts are still there', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      for (const [, body] of MALFORMED) {
        expect((await patchSession(t, s.uuid, { authorization: `Bearer ${s.token}`, body })).status).toBe(400);
      }
      expect((await sessionRow(t, s.uuid)).otp_attempts_left).toBe(5);
      expectError(await confirm(t, s.uuid, s.token, wrongCode(s.code)), 400, 'otp_invalid', { attempts_remaining: 4 });
      const res = await confirm(t, s.uuid, s.token, s.code).expect(200);
      expect(res.body.status).toBe('confirmed');
    });

    it('a code with leading zeros is a string of six digits like any other', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const code = s.code === '000123' ? '000124' : '000123';
      expectError(await confirm(t, s.uuid, s.token, code), 400, 'otp_invalid', { attempts_remaining: 4 });
    });
  });

  describe('pending, wrong code → attempt counted; 400 otp_invalid with attempts_remaining', () => {
    it('answers attempts_remaining 4, 3, 2, 1, 0 and stores each count; the wrong code that uses the last attempt expires the session', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const bad = wrongCode(s.code);
      for (const remaining of [4, 3, 2, 1]) {
        expectError(await confirm(t, s.uuid, s.token, bad), 400, 'otp_invalid', { attempts_remaining: remaining });
        const row = await sessionRow(t, s.uuid);
        expect(row).toMatchObject({ status: 'pending', otp_attempts_left: remaining, ended_at: null, confirmed_at: null });
        expect(row.otp_hash).not.toBeNull();
      }
      expectError(await confirm(t, s.uuid, s.token, bad), 400, 'otp_invalid', { attempts_remaining: 0 });
      const row = await sessionRow(t, s.uuid);
      expect(row).toMatchObject({ status: 'expired', otp_attempts_left: 0, otp_hash: null, confirmed_at: null, expires_at: null });
      expect(iso(row.ended_at)).toBe(t.clock.now().toISOString());
    });

    it('each wrong code may differ: any six digits other than the code count the same', async () => {
      const s = await createPendingSession(t, othr(uniqueEmail()));
      const wrong = ['000000', '111111', '999999', '123456', '654321'].filter((c) => c !== s.code).slice(0, 3);
      for (const [i, code] of wrong.entries()) {
        expectError(await confirm(t, s.uuid, s.token, code), 400, 'otp_invalid', { attempts_remaining: 4 - i });
      }
      expect((await sessionRow(t, s.uuid)).otp_attempts_left).toBe(2);
    });

    it('after the last attempt, every later PATCH answers 400 otp_attempts_exceeded, even with the right code, and nothing changes', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      for (let i = 0; i < 5; i += 1) await confirm(t, s.uuid, s.token, wrongCode(s.code)).expect(400);
      const after = await sessionRow(t, s.uuid);
      expect(after.status).toBe('expired');

      for (const code of [s.code, wrongCode(s.code), s.code]) {
        expectError(await confirm(t, s.uuid, s.token, code), 400, 'otp_attempts_exceeded');
      }
      t.clock.advance(3600);
      expectError(await confirm(t, s.uuid, s.token, s.code), 400, 'otp_attempts_exceeded');
      expect(await sessionRow(t, s.uuid)).toEqual(after);
      // The token does not authenticate an expired session: starting again with it makes a new login.
      const again = await startLogin(t, mobi(s.body.user.email), s.token).expect(201);
      expect(again.body.uuid).not.toBe(s.uuid);
    });

    it('a wrong code followed by the right one confirms (attempts left are enough)', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      for (let i = 0; i < 4; i += 1) await confirm(t, s.uuid, s.token, wrongCode(s.code)).expect(400);
      const res = await confirm(t, s.uuid, s.token, s.code).expect(200);
      expect(res.body.status).toBe('confirmed');
      expect(await sessionRow(t, s.uuid)).toMatchObject({ status: 'confirmed', otp_attempts_left: 1, otp_hash: null });
    });
  });

  describe('pending, OTP past otp_expires_at → session expired; 400 otp_expired once, then session_expired', () => {
    it('the right code after OTP_TTL (301 s) → otp_expired, the session becomes expired, and later PATCHes get session_expired', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      t.clock.advance(301);
      expectError(await confirm(t, s.uuid, s.token, s.code), 400, 'otp_expired');
      const row = await sessionRow(t, s.uuid);
      expect(row).toMatchObject({ status: 'expired', otp_hash: null, otp_attempts_left: 5, confirmed_at: null, expires_at: null });
      expect(iso(row.ended_at)).toBe(t.clock.now().toISOString());

      for (const code of [s.code, wrongCode(s.code)]) {
        expectError(await confirm(t, s.uuid, s.token, code), 400, 'session_expired');
      }
      expect(await sessionRow(t, s.uuid)).toEqual(row);
    });

    it('a wrong code after the OTP expired → otp_expired too (not otp_invalid) and is not counted', async () => {
      const s = await createPendingSession(t, othr(uniqueEmail()));
      expectError(await confirm(t, s.uuid, s.token, wrongCode(s.code)), 400, 'otp_invalid', { attempts_remaining: 4 });
      t.clock.advance(301);
      expectError(await confirm(t, s.uuid, s.token, wrongCode(s.code)), 400, 'otp_expired');
      expect(await sessionRow(t, s.uuid)).toMatchObject({ status: 'expired', otp_attempts_left: 4, otp_hash: null });
      expectError(await confirm(t, s.uuid, s.token, s.code), 400, 'session_expired');
    });

    it('the code is still accepted just before otp_expires_at (299 s)', async () => {
      const s = await createPendingSession(t, othr(uniqueEmail()));
      t.clock.advance(299);
      const res = await confirm(t, s.uuid, s.token, s.code).expect(200);
      expect(res.body.status).toBe('confirmed');
    });
  });

  describe('pending, right code → confirmed; 200 with the session', () => {
    it('othr: status confirmed, confirmed_at now, expires_at = confirmed_at + OTHR_SESSION_TTL (2 h), token included, is_new_* false; the row agrees', async () => {
      const email = uniqueEmail();
      const s = await createPendingSession(t, othr(email));
      t.clock.advance(7);
      const now = t.clock.now().toISOString();
      const res = await confirm(t, s.uuid, s.token, s.code).expect(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(Object.keys(res.body)).toEqual(SESSION_KEYS);
      expect(res.body).toEqual({
        uuid: s.uuid,
        created_at: s.body.created_at,
        token: s.token,
        is_new_user: false,
        is_new_device: false,
        user: { uuid: s.body.user.uuid, email },
        device: { uuid: s.body.device.uuid, type: 'othr', vendor_uuid: null },
        status: 'confirmed',
        otp_expires_at: s.body.otp_expires_at,
        confirmed_at: now,
        expires_at: plus(now, 7200),
      });
      expect(res.body.confirmed_at).toMatch(ISO_UTC);

      const row = await sessionRow(t, s.uuid);
      expect(row).toMatchObject({ status: 'confirmed', otp_hash: null, otp_attempts_left: 5, ended_at: null });
      expect(iso(row.confirmed_at)).toBe(now);
      expect(iso(row.expires_at)).toBe(plus(now, 7200));
    });

    it('mobi: expires_at is null (no expiry) when MOBI_SESSION_TTL is not set', async () => {
      const email = uniqueEmail();
      const vendor = randomUUID();
      const s = await createPendingSession(t, mobi(email, vendor));
      const res = await confirm(t, s.uuid, s.token, s.code).expect(200);
      expect(res.body).toEqual({
        ...s.body,
        is_new_user: false,
        is_new_device: false,
        status: 'confirmed',
        confirmed_at: t.clock.now().toISOString(),
        expires_at: null,
      });
      expect(res.body.device).toEqual({ uuid: s.body.device.uuid, type: 'mobi', vendor_uuid: vendor });
      const row = await sessionRow(t, s.uuid);
      expect(row).toMatchObject({ status: 'confirmed', expires_at: null, otp_hash: null });

      // A year later it is still confirmed (and a retry is still the idempotent 200).
      t.clock.advance(366 * 24 * 3600);
      expect((await confirm(t, s.uuid, s.token, s.code).expect(200)).body).toEqual(res.body);
    });

    it('the confirmed token authenticates: POST /sessions with it returns the same session (200)', async () => {
      const email = uniqueEmail();
      const s = await createConfirmedSession(t, othr(email));
      const reused = await startLogin(t, othr(email), s.token).expect(200);
      expect(reused.body.uuid).toBe(s.uuid);
      expect(reused.body.status).toBe('confirmed');
    });
  });

  describe('the OTP can never be used again', () => {
    it('the code is erased on confirmation (otp_hash IS NULL) and nothing else stores it', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      expect((await sessionRow(t, s.uuid)).otp_hash).toBeInstanceOf(Buffer);
      await confirm(t, s.uuid, s.token, s.code).expect(200);
      const row = await sessionRow(t, s.uuid);
      expect(row.otp_hash).toBeNull();
      expect(JSON.stringify(row)).not.toContain(s.code);
      const [{ n }] = await t.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM sessions WHERE id = $1 AND otp_hash IS NULL AND status = 'confirmed'`,
        [s.uuid.slice(4)],
      );
      expect(n).toBe(1);
    });

    it("the used code does not confirm the device's next login, and the old session, once revoked, refuses it", async () => {
      const email = uniqueEmail();
      const vendor = randomUUID();
      const first = await createConfirmedSession(t, mobi(email, vendor));
      t.clock.advance(61);
      const second = await createPendingSession(t, mobi(email, vendor));
      if (second.code !== first.code) {
        // Codes are per session (bound to it): the first one is simply a wrong code here.
        expectError(await confirm(t, second.uuid, second.token, first.code), 400, 'otp_invalid', { attempts_remaining: 4 });
      }
      // Still the first session's own token and code: unchanged while it is live...
      await confirm(t, first.uuid, first.token, first.code).expect(200);
      await confirm(t, second.uuid, second.token, second.code).expect(200);
      // ...and refused once the device's next login has been confirmed.
      expectError(await confirm(t, first.uuid, first.token, first.code), 400, 'session_revoked');
    });
  });

  describe('confirmed → 200 with the session, unchanged, for any well-formed otp_code (idempotent retry)', () => {
    it('the right code again, a wrong code, any six digits: 200 and the same body; no attempt counted; the row is unchanged', async () => {
      const s = await createConfirmedSession(t, othr(uniqueEmail()));
      const row = await sessionRow(t, s.uuid);
      t.clock.advance(30);
      for (const code of [s.code, wrongCode(s.code), '000000', '999999']) {
        const res = await confirm(t, s.uuid, s.token, code).expect(200);
        expect(res.body).toEqual(s.body);
      }
      expect(await sessionRow(t, s.uuid)).toEqual(row);
    });

    it('a malformed otp_code on a confirmed session is still 400 validation_failed', async () => {
      const s = await createConfirmedSession(t, othr(uniqueEmail()));
      expectValidationFailed(await confirm(t, s.uuid, s.token, '12345'), 'otp_code');
      expectValidationFailed(await confirm(t, s.uuid, s.token, 123456), 'otp_code');
    });

    it('othr: still 200 just before expires_at (7199 s)', async () => {
      const s = await createConfirmedSession(t, othr(uniqueEmail()));
      t.clock.advance(7199);
      expect((await confirm(t, s.uuid, s.token, s.code).expect(200)).body).toEqual(s.body);
    });

    it('othr: once past expires_at (7201 s) → 400 session_expired, the session is expired, and stays so', async () => {
      const s = await createConfirmedSession(t, othr(uniqueEmail()));
      t.clock.advance(7201);
      expectError(await confirm(t, s.uuid, s.token, s.code), 400, 'session_expired');
      const row = await sessionRow(t, s.uuid);
      expect(row).toMatchObject({ status: 'expired', otp_hash: null });
      expect(iso(row.confirmed_at)).toBe(s.body.confirmed_at);
      expect(iso(row.expires_at)).toBe(s.body.expires_at);
      expect(iso(row.ended_at)).toBe(t.clock.now().toISOString());

      t.clock.advance(10);
      expectError(await confirm(t, s.uuid, s.token, wrongCode(s.code)), 400, 'session_expired');
      expect(await sessionRow(t, s.uuid)).toEqual(row);
    });
  });

  describe('right code → every other pending or confirmed session of the same device becomes revoked', () => {
    it('revokes the confirmed and pending sessions of the device; they then answer 400 session_revoked', async () => {
      const email = uniqueEmail();
      const vendor = randomUUID();
      const login = mobi(email, vendor);
      const confirmed = await createConfirmedSession(t, login);
      t.clock.advance(61);
      const pending = await createPendingSession(t, login);
      t.clock.advance(61);
      const exhausted = await createPendingSession(t, login);
      for (let i = 0; i < 5; i += 1) await confirm(t, exhausted.uuid, exhausted.token, wrongCode(exhausted.code)).expect(400);
      t.clock.advance(61);
      const latest = await createPendingSession(t, login);
      const exhaustedBefore = await sessionRow(t, exhausted.uuid);

      t.clock.advance(1);
      const res = await confirm(t, latest.uuid, latest.token, latest.code).expect(200);
      expect(res.body.status).toBe('confirmed');
      const now = t.clock.now().toISOString();

      for (const revoked of [confirmed, pending]) {
        const row = await sessionRow(t, revoked.uuid);
        expect(row).toMatchObject({ status: 'revoked', otp_hash: null });
        expect(iso(row.ended_at)).toBe(now);
      }
      // An already-ended session keeps its status and its answer.
      expect(await sessionRow(t, exhausted.uuid)).toEqual(exhaustedBefore);
      expectError(await confirm(t, exhausted.uuid, exhausted.token, exhausted.code), 400, 'otp_attempts_exceeded');

      expectError(await confirm(t, confirmed.uuid, confirmed.token, confirmed.code), 400, 'session_revoked');
      expectError(await confirm(t, pending.uuid, pending.token, pending.code), 400, 'session_revoked');
      expectError(await confirm(t, pending.uuid, pending.token, wrongCode(pending.code)), 400, 'session_revoked');

      const [{ live }] = await t.db.query<{ live: number }>(
        `SELECT count(*)::int AS live FROM sessions WHERE device_id = $1 AND status IN ('pending', 'confirmed')`,
        [latest.body.device.uuid.slice(4)],
      );
      expect(live).toBe(1);
    });

    it('revokes a pending login of an othr device when an older pending one is confirmed', async () => {
      const email = uniqueEmail();
      const older = await createPendingSession(t, othr(email));
      t.clock.advance(61);
      const newer = await createPendingSession(t, othr(email));
      expect(newer.body.device.uuid).toBe(older.body.device.uuid);
      await confirm(t, older.uuid, older.token, older.code).expect(200);
      expect(await statusOf(t, newer.uuid)).toBe('revoked');
      expectError(await confirm(t, newer.uuid, newer.token, newer.code), 400, 'session_revoked');
      expect(await statusOf(t, older.uuid)).toBe('confirmed');
    });

    it("does NOT touch sessions of the user's other devices, nor another user's device with the same vendor_uuid", async () => {
      const email = uniqueEmail();
      const vendorA = randomUUID();
      const vendorB = randomUUID();
      const otherMobi = await createConfirmedSession(t, mobi(email, vendorB));
      const otherMobiPending = await (async () => {
        t.clock.advance(61);
        return createPendingSession(t, mobi(email, vendorB));
      })();
      const othrNoVendor = await createConfirmedSession(t, othr(email));
      const othrWithVendor = await createPendingSession(t, othr(email, vendorA));
      const otherUserSameVendor = await createPendingSession(t, mobi(uniqueEmail(), vendorA));
      const untouched = [otherMobi, otherMobiPending, othrNoVendor, othrWithVendor, otherUserSameVendor];
      // Confirming otherMobi then logging in again left otherMobi confirmed and a pending login beside it.
      const before = await Promise.all(untouched.map((s) => sessionRow(t, s.uuid)));

      const target = await createPendingSession(t, mobi(email, vendorA));
      await confirm(t, target.uuid, target.token, target.code).expect(200);

      expect(await Promise.all(untouched.map((s) => sessionRow(t, s.uuid)))).toEqual(before);
      expect(before.map((r) => r.status)).toEqual(['confirmed', 'pending', 'confirmed', 'pending', 'pending']);
      await confirm(t, othrWithVendor.uuid, othrWithVendor.token, othrWithVendor.code).expect(200);
      await confirm(t, otherUserSameVendor.uuid, otherUserSameVendor.token, otherUserSameVendor.code).expect(200);
      expect(await statusOf(t, target.uuid)).toBe('confirmed');
    });
  });

  describe('PATCH answers for ended sessions', () => {
    it('revoked → 400 session_revoked for any well-formed code; expired → 400 session_expired', async () => {
      const email = uniqueEmail();
      const a = await createPendingSession(t, othr(email));
      t.clock.advance(61);
      const b = await createPendingSession(t, othr(email));
      await confirm(t, b.uuid, b.token, b.code).expect(200);
      for (const code of [a.code, wrongCode(a.code)]) {
        expectError(await confirm(t, a.uuid, a.token, code), 400, 'session_revoked');
      }
      t.clock.advance(7201);
      expectError(await confirm(t, b.uuid, b.token, b.code), 400, 'session_expired');
      expectError(await confirm(t, b.uuid, b.token, b.code), 400, 'session_expired');
    });
  });
});

describe('PATCH /sessions/{uuid} with MOBI_SESSION_TTL set', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ...BASE_ENV, MOBI_SESSION_TTL: '600' });
  });
  afterAll(() => t.close());

  it('a confirmed mobi session gets expires_at = confirmed_at + MOBI_SESSION_TTL, and is session_expired once past it', async () => {
    const s = await createPendingSession(t, mobi(uniqueEmail(), randomUUID()));
    const res = await confirm(t, s.uuid, s.token, s.code).expect(200);
    expect(res.body.expires_at).toBe(plus(res.body.confirmed_at, 600));
    expect(iso((await sessionRow(t, s.uuid)).expires_at)).toBe(res.body.expires_at);

    t.clock.advance(599);
    expect((await confirm(t, s.uuid, s.token, s.code).expect(200)).body).toEqual(res.body);
    t.clock.advance(2);
    expectError(await confirm(t, s.uuid, s.token, s.code), 400, 'session_expired');
    expect(await statusOf(t, s.uuid)).toBe('expired');
  });

  it('othr sessions keep OTHR_SESSION_TTL (2 h)', async () => {
    const s = await createPendingSession(t, othr(uniqueEmail()));
    const res = await confirm(t, s.uuid, s.token, s.code).expect(200);
    expect(res.body.expires_at).toBe(plus(res.body.confirmed_at, 7200));
  });
});

describe('PATCH /sessions/{uuid} under concurrency: exactly one transition, attempts counted exactly', () => {
  const noServerErrors = (responses: request.Response[]) =>
    expect(responses.filter((r) => r.status >= 500).map((r) => [r.status, r.body])).toEqual([]);

  describe('with OTP_MAX_ATTEMPTS=50', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp({ ...BASE_ENV, OTP_MAX_ATTEMPTS: '50' });
    });
    afterAll(() => t.close());

    it('30 parallel wrong codes → 30 otp_invalid whose attempts_remaining are exactly 49..20; the row says 20', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const bad = wrongCode(s.code);
      const responses = await Promise.all(Array.from({ length: 30 }, () => confirm(t, s.uuid, s.token, bad)));
      noServerErrors(responses);
      for (const res of responses) expect(res.body.code).toBe('otp_invalid');
      const remaining = responses.map((r) => r.body.attempts_remaining as number).sort((a, b) => b - a);
      expect(remaining).toEqual(Array.from({ length: 30 }, (_, i) => 49 - i));
      expect(await sessionRow(t, s.uuid)).toMatchObject({ status: 'pending', otp_attempts_left: 20 });
      // And the session still confirms with its code afterwards.
      await confirm(t, s.uuid, s.token, s.code).expect(200);
    });
  });

  describe('with the defaults', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp({ ...BASE_ENV, OTP_RESEND_COOLDOWN: '0' });
    });
    afterAll(() => t.close());

    it('30 parallel wrong codes → exactly five otp_invalid (4, 3, 2, 1, 0) and 25 otp_attempts_exceeded; the session is expired', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const bad = wrongCode(s.code);
      const responses = await Promise.all(Array.from({ length: 30 }, () => confirm(t, s.uuid, s.token, bad)));
      noServerErrors(responses);
      for (const res of responses) expect(res.status).toBe(400);
      const invalid = responses.filter((r) => r.body.code === 'otp_invalid');
      expect(invalid.map((r) => r.body.attempts_remaining).sort()).toEqual([0, 1, 2, 3, 4]);
      const exceeded = responses.filter((r) => r.body.code === 'otp_attempts_exceeded');
      expect(exceeded).toHaveLength(25);
      for (const res of exceeded) expectError(res, 400, 'otp_attempts_exceeded');
      expect(await sessionRow(t, s.uuid)).toMatchObject({ status: 'expired', otp_attempts_left: 0, otp_hash: null });
    });

    it('20 parallel right codes → all 200 with the same confirmed_at, exactly one transition, no 5xx', async () => {
      const s = await createPendingSession(t, othr(uniqueEmail()));
      // Each request gets its own "now": a second transition would show a different confirmed_at.
      const restore = tickingClock(t);
      let responses: request.Response[];
      try {
        responses = await Promise.all(Array.from({ length: 20 }, () => confirm(t, s.uuid, s.token, s.code)));
      } finally {
        restore();
      }
      noServerErrors(responses);
      expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
      const first = responses[0].body;
      for (const res of responses) expect(res.body).toEqual(first);
      expect(first).toMatchObject({ uuid: s.uuid, status: 'confirmed', token: s.token });
      expect(first.expires_at).toBe(plus(first.confirmed_at, 7200));

      const row = await sessionRow(t, s.uuid);
      expect(row).toMatchObject({ status: 'confirmed', otp_hash: null, otp_attempts_left: 5, ended_at: null });
      expect(iso(row.confirmed_at)).toBe(first.confirmed_at);
      expect(iso(row.expires_at)).toBe(first.expires_at);
    });

    it('parallel right and wrong codes → no 5xx; confirmed exactly once or expired, and the answers agree with the row', async () => {
      const s = await createPendingSession(t, mobi(uniqueEmail()));
      const codes = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? s.code : wrongCode(s.code)));
      const responses = await Promise.all(codes.map((code) => confirm(t, s.uuid, s.token, code)));
      noServerErrors(responses);
      const row = await sessionRow(t, s.uuid);
      const ok = responses.filter((r) => r.status === 200);
      const invalid = responses.filter((r) => r.body.code === 'otp_invalid');
      if (row.status === 'confirmed') {
        expect(ok.length).toBeGreaterThan(0);
        for (const res of ok) expect(res.body.confirmed_at).toBe(iso(row.confirmed_at));
        // Wrong codes only count before the confirmation.
        expect(row.otp_attempts_left).toBe(5 - invalid.length);
        for (const res of responses.filter((r) => r.status !== 200)) expect(res.body.code).toBe('otp_invalid');
      } else {
        expect(row).toMatchObject({ status: 'expired', otp_attempts_left: 0 });
        expect(ok).toHaveLength(0);
        expect(invalid).toHaveLength(5);
      }
      expect(invalid.map((r) => r.body.attempts_remaining).sort().reverse()).toEqual(
        Array.from({ length: invalid.length }, (_, i) => 4 - i),
      );
    });

    it('two pending sessions of one device confirmed in parallel → no 5xx, exactly one confirmed and the other revoked', async () => {
      for (let round = 0; round < 5; round += 1) {
        const login: LoginBody = mobi(uniqueEmail('race'), randomUUID());
        const a = await createPendingSession(t, login);
        const b = await createPendingSession(t, login);
        expect(b.body.device.uuid).toBe(a.body.device.uuid);

        const [ra, rb] = await Promise.all([confirm(t, a.uuid, a.token, a.code), confirm(t, b.uuid, b.token, b.code)]);
        noServerErrors([ra, rb]);
        const [winner, loser] = ra.status === 200 ? [a, b] : [b, a];
        const [winRes, loseRes] = ra.status === 200 ? [ra, rb] : [rb, ra];
        expect(winRes.status).toBe(200);
        expect(winRes.body).toMatchObject({ uuid: winner.uuid, status: 'confirmed' });
        expectError(loseRes, 400, 'session_revoked');
        expect(await statusOf(t, winner.uuid)).toBe('confirmed');
        expect(await sessionRow(t, loser.uuid)).toMatchObject({ status: 'revoked', otp_hash: null, confirmed_at: null });
      }
    });

    it("parallel confirms of the same device's sessions and of another device of the user do not block each other", async () => {
      const email = uniqueEmail();
      const vendor = randomUUID();
      const a1 = await createPendingSession(t, mobi(email, vendor));
      const a2 = await createPendingSession(t, mobi(email, vendor));
      const other = await createPendingSession(t, othr(email));
      const responses = await Promise.all([
        confirm(t, a1.uuid, a1.token, a1.code),
        confirm(t, other.uuid, other.token, other.code),
        confirm(t, a2.uuid, a2.token, a2.code),
      ]);
      noServerErrors(responses);
      expect(responses[1].status).toBe(200);
      expect(responses.filter((r) => r.status === 200)).toHaveLength(2);
      expect([await statusOf(t, a1.uuid), await statusOf(t, a2.uuid)].sort()).toEqual(['confirmed', 'revoked']);
      expect(await statusOf(t, other.uuid)).toBe('confirmed');
    });
  });
});
