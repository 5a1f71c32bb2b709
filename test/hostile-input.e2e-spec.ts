import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import request from 'supertest';
import { countRows, createPendingSession, errorBody, mailSettled, mobi, patchSession, sessionRow } from './support/factories.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * Hostile input: every malformed, mistyped, oversized or unexpected request gets a 4xx JSON error
 * with a stable `code` (never a 5xx, never a stack trace) and changes nothing in the database.
 */

const VENDOR = '0f8fad5b-d9cb-469f-a165-70867728950e';
const EMAIL = 'hostile@example.com';
const valid = () => mobi(EMAIL, VENDOR);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

describe('hostile input', () => {
  let t: TestApp;
  /** A pending session created before the tests, for PATCH cases; nothing may change it. */
  let existing: { uuid: string; token: string; code: string };
  let before: Awaited<ReturnType<typeof countRows>>;
  let mailsBefore: number;
  let existingRowBefore: Record<string, unknown>;

  beforeAll(async () => {
    // Per-IP request limits are not what these tests are about (every request comes from 127.0.0.1).
    t = await createTestApp({ RATE_LIMIT_PER_MINUTE: '0' });
    const created = await createPendingSession(t, mobi('owner@example.com', '9b2c3d4e-1111-4222-8333-944455556666'));
    existing = { uuid: created.uuid, token: created.token, code: created.code };
    await mailSettled(t);
  });
  afterAll(() => t.close());

  beforeEach(async () => {
    before = await countRows(t);
    mailsBefore = t.smtp.messages.length;
    existingRowBefore = await sessionRow(t, existing.uuid);
  });

  afterEach(async () => {
    // Nothing a refused request does may leave a trace: no user, device, session, send or mail,
    // and the existing session is exactly as it was (status, attempts, hashes).
    await mailSettled(t);
    expect(await countRows(t)).toEqual(before);
    expect(t.smtp.messages.length).toBe(mailsBefore);
    expect(await sessionRow(t, existing.uuid)).toEqual(existingRowBefore);
  });

  /** POST /sessions?mode=email with a raw body and content type. */
  const postRaw = (body: string | Buffer, contentType = 'application/json') =>
    request(t.http).post('/sessions?mode=email').set('Content-Type', contentType).send(body);

  /** POST /sessions?mode=email with a JSON value as body. */
  const postJson = (body: Json) => postRaw(JSON.stringify(body));

  /** Asserts a 4xx JSON error with exactly this status, code and extra fields. */
  function expectError(res: request.Response, status: number, code: string, extra: Record<string, unknown> = {}) {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json; charset=utf--?8$/i);
    expect(res.body).toEqual(errorBody(status, code, extra));
    expect(JSON.stringify(res.body)).not.toMatch(/\bat \S+:\d+:\d+|QueryFailedError|SELECT |INSERT |node_modules/);
  }

  /** A 400 validation_failed whose `fields` is exactly `fields`. */
  function expectInvalid(res: request.Response, fields: string[]) {
    expectError(res, 400, 'validation_failed', { fields: expect.any(Array) });
    expect([...res.body.fields].sort()).toEqual([...fields].sort());
  }

  /** A 400 validation_failed whose `fields` names `field` (and perhaps fields beneath it). */
  function expectInvalidField(res: request.Response, field: string) {
    expectError(res, 400, 'validation_failed', { fields: expect.any(Array) });
    expect(res.body.fields).toContain(field);
    for (const named of res.body.fields as string[]) expect(named === field || named.startsWith(`${field}.`)).toBe(true);
    expect(res.body.message).toContain(field);
  }

  describe('bodies that are not a JSON object', () => {
    it.each([
      ['truncated object', '{"user":'],
      ['unquoted keys', '{user:{email:"a@example.com"}}'],
      ['single quotes', "{'user':{}}"],
      ['trailing comma', '{"user":{"email":"a@example.com"},}'],
      ['garbage', 'not json at all'],
      ['a JSON string (top-level scalars are refused)', '"str"'],
      ['a JSON null', 'null'],
      ['a JSON number', '123'],
      ['a JSON boolean', 'true'],
      ['NaN', 'NaN'],
      ['two objects', '{}{}'],
    ])('%s → 400 malformed_json', async (_name, body) => {
      expectError(await postRaw(body), 400, 'malformed_json');
    });

    it.each([
      ['an empty array', '[]'],
      ['an array holding a valid body', JSON.stringify([valid()])],
    ])('%s → 400 validation_failed', async (_name, body) => {
      expectInvalid(await postRaw(body), []);
    });

    it('an empty object → 400 naming user and device', async () => {
      expectInvalid(await postJson({}), ['user', 'device']);
    });

    it('a JSON content type with no body at all → 400 naming user and device', async () => {
      expectInvalid(await request(t.http).post('/sessions?mode=email').set('Content-Type', 'application/json'), [
        'user',
        'device',
      ]);
    });

    it('no body and no content type → 400 validation_failed', async () => {
      expectInvalid(await request(t.http).post('/sessions?mode=email'), []);
    });
  });

  describe('bodies that are not JSON → 415 unsupported_media_type', () => {
    it.each([
      ['text/plain', JSON.stringify(valid())],
      ['text/plain; charset=utf-8', JSON.stringify(valid())],
      ['application/x-www-form-urlencoded', 'user[email]=a%40example.com&device[type]=othr'],
      ['application/xml', '<user><email>a@example.com</email></user>'],
      ['application/octet-stream', JSON.stringify(valid())],
      ['text/json', JSON.stringify(valid())],
      ['application/json; charset=iso-8859-1', JSON.stringify(valid())],
    ])('%s', async (contentType, body) => {
      expectError(await postRaw(body, contentType), 415, 'unsupported_media_type');
    });

    it('multipart/form-data', async () => {
      const res = await request(t.http)
        .post('/sessions?mode=email')
        .field('user[email]', EMAIL)
        .field('device[type]', 'othr');
      expectError(res, 415, 'unsupported_media_type');
    });

    it('a multipart file upload', async () => {
      const res = await request(t.http)
        .post('/sessions?mode=email')
        .attach('file', Buffer.from(JSON.stringify(valid())), 'body.json');
      expectError(res, 415, 'unsupported_media_type');
    });

  });

  describe('encoded bodies (sent over raw HTTP, byte for byte)', () => {
    const postEncoded = (body: Buffer, encoding: string) =>
      rawRequest(t, 'POST', '/sessions?mode=email', { 'Content-Type': 'application/json', 'Content-Encoding': encoding }, body);

    it('a valid gzip body is read like plain JSON (here: refused for its unknown property)', async () => {
      const res = await postEncoded(gzipSync(JSON.stringify({ ...valid(), pad: 1 })), 'gzip');
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorBody(400, 'validation_failed', { fields: ['pad'] }));
    });

    it('a gzip body whose JSON is malformed → 400 malformed_json', async () => {
      const res = await postEncoded(gzipSync('{"user":'), 'gzip');
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorBody(400, 'malformed_json'));
    });

    it('a body that claims gzip but is not → 400 bad_request, not 500', async () => {
      const res = await postEncoded(Buffer.from('this is not gzip'), 'gzip');
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorBody(400, 'bad_request'));
    });

    it('a small gzip body that inflates past 16 KiB (a zip bomb) → 413 payload_too_large', async () => {
      const bomb = gzipSync(JSON.stringify({ ...valid(), pad: 'x'.repeat(10_000_000) }));
      expect(bomb.length).toBeLessThan(16 * 1024);
      const res = await postEncoded(bomb, 'gzip');
      expect(res.status).toBe(413);
      expect(res.body).toEqual(errorBody(413, 'payload_too_large'));
    });

    it('a br body that inflates past 16 KiB and then turns out corrupt → 413, and the process stays up', async () => {
      const uncaught: unknown[] = [];
      const onUncaught = (error: unknown) => uncaught.push(error);
      process.on('uncaughtException', onUncaught);
      try {
        // Random hex compresses only to half: under 16 KiB sent, about 30 KB inflated before the break.
        const whole = brotliCompressSync(JSON.stringify({ ...valid(), pad: randomBytes(15_000).toString('hex') }));
        expect(whole.length).toBeLessThan(16 * 1024);
        const bomb = Buffer.concat([whole.subarray(0, -200), Buffer.alloc(64, 0xff)]);
        const res = await postEncoded(bomb, 'br');
        expect(res.status).toBe(413);
        expect(res.body).toEqual(errorBody(413, 'payload_too_large'));
        await new Promise((resolve) => setTimeout(resolve, 200)); // the inflater reports the corruption after the answer
        expect(uncaught).toEqual([]);
        expect((await request(t.http).get('/health/live')).status).toBe(200);
      } finally {
        process.off('uncaughtException', onUncaught);
      }
    });

    it('an unknown Content-Encoding → 415 unsupported_media_type', async () => {
      const res = await postEncoded(Buffer.from(JSON.stringify(valid())), 'x-unknown');
      expect(res.status).toBe(415);
      expect(res.body).toEqual(errorBody(415, 'unsupported_media_type'));
    });
  });

  describe('body size', () => {
    /** A JSON body of exactly `bytes` bytes: a valid login plus an unknown `pad` property. */
    const bodyOf = (bytes: number) => {
      const empty = JSON.stringify({ ...valid(), pad: '' });
      return JSON.stringify({ ...valid(), pad: 'x'.repeat(bytes - empty.length) });
    };

    it('a body of exactly 16 KiB is read (and refused for its unknown property)', async () => {
      const body = bodyOf(16 * 1024);
      expect(Buffer.byteLength(body)).toBe(16 * 1024);
      expectInvalid(await postRaw(body), ['pad']);
    });

    it('a body of 16 KiB + 1 byte → 413 payload_too_large', async () => {
      const body = bodyOf(16 * 1024 + 1);
      expect(Buffer.byteLength(body)).toBe(16 * 1024 + 1);
      expectError(await postRaw(body), 413, 'payload_too_large');
    });

    it('a 1 MiB body → 413 payload_too_large', async () => {
      expectError(await postRaw(bodyOf(1024 * 1024)), 413, 'payload_too_large');
    });

    it('a chunked body (no Content-Length) over 16 KiB → 413 payload_too_large', async () => {
      const chunks = ['{"pad":"', ...Array.from({ length: 20 }, () => 'x'.repeat(1024)), '"}'];
      const res = await rawRequest(t, 'POST', '/sessions?mode=email', { 'Content-Type': 'application/json' }, chunks);
      expect(res.status).toBe(413);
      expect(res.body).toEqual(errorBody(413, 'payload_too_large'));
    });

    it('a chunked text/plain body → 415 unsupported_media_type', async () => {
      const res = await rawRequest(t, 'POST', '/sessions?mode=email', { 'Content-Type': 'text/plain' }, ['{"user":', '{}}']);
      expect(res.status).toBe(415);
      expect(res.body).toEqual(errorBody(415, 'unsupported_media_type'));
    });

    it('a chunked body without any Content-Type → 415 unsupported_media_type', async () => {
      const res = await rawRequest(t, 'POST', '/sessions?mode=email', {}, [JSON.stringify(valid())]);
      expect(res.status).toBe(415);
      expect(res.body).toEqual(errorBody(415, 'unsupported_media_type'));
    });
  });

  describe('wrong JSON types', () => {
    const withUser = (user: Json) => ({ user, device: { type: 'mobi', vendor_uuid: VENDOR } });
    const withEmail = (email: Json) => ({ user: { email }, device: { type: 'mobi', vendor_uuid: VENDOR } });
    const withDevice = (device: Json) => ({ user: { email: EMAIL }, device });
    const withType = (type: Json) => ({ user: { email: EMAIL }, device: { type, vendor_uuid: VENDOR } });
    const withVendor = (type: 'mobi' | 'othr', vendorUuid: Json) => ({
      user: { email: EMAIL },
      device: { type, vendor_uuid: vendorUuid },
    });

    const wrongTypes: [string, Json][] = [
      ['a number', 42],
      ['zero', 0],
      ['a boolean', true],
      ['false', false],
      ['an empty array', []],
      ['an empty object', {}],
      ['null', null],
    ];

    it.each<[string, Json]>([...wrongTypes.filter(([name]) => name !== 'an empty object'), ['a string', 'joe@example.com'], ['an array of objects', [{ email: EMAIL }]]])(
      'user is %s → 400 naming user',
      async (_name, user) => {
        expectInvalidField(await postJson(withUser(user)), 'user');
      },
    );

    it.each<[string, Json]>([...wrongTypes, ['an array of strings', [EMAIL]], ['an object with the email', { email: EMAIL }]])(
      'user.email is %s → 400 naming user.email',
      async (_name, email) => {
        expectInvalid(await postJson(withEmail(email)), ['user.email']);
      },
    );

    it.each<[string, Json]>([...wrongTypes.filter(([name]) => name !== 'an empty object'), ['a string', 'mobi'], ['an array of objects', [{ type: 'othr' }]]])(
      'device is %s → 400 naming device',
      async (_name, device) => {
        expectInvalidField(await postJson(withDevice(device)), 'device');
      },
    );

    it.each<[string, Json]>([...wrongTypes, ['an array of strings', ['mobi']], ['an object', { type: 'mobi' }]])(
      'device.type is %s → 400 naming device.type',
      async (_name, type) => {
        expectInvalidField(await postJson(withType(type)), 'device.type');
      },
    );

    it.each<[string, Json]>([...wrongTypes, ['an array of strings', [VENDOR]], ['an object', { uuid: VENDOR }]])(
      'device.vendor_uuid (mobi) is %s → 400 naming device.vendor_uuid',
      async (_name, vendorUuid) => {
        expectInvalid(await postJson(withVendor('mobi', vendorUuid)), ['device.vendor_uuid']);
      },
    );

    it.each<[string, Json]>([...wrongTypes, ['an array of strings', [VENDOR]]])(
      'device.vendor_uuid (othr) is %s → 400 naming device.vendor_uuid (null is not "absent")',
      async (_name, vendorUuid) => {
        expectInvalid(await postJson(withVendor('othr', vendorUuid)), ['device.vendor_uuid']);
      },
    );

    it('every field wrong at once → 400 naming each of them', async () => {
      expectInvalid(await postJson({ user: { email: 1 }, device: { type: 2, vendor_uuid: 3 } }), [
        'user.email',
        'device.type',
        'device.vendor_uuid',
      ]);
    });
  });

  describe('missing fields', () => {
    it.each<[string, Json, string[]]>([
      ['user', { device: { type: 'mobi', vendor_uuid: VENDOR } }, ['user']],
      ['device', { user: { email: EMAIL } }, ['device']],
      ['user.email', { user: {}, device: { type: 'mobi', vendor_uuid: VENDOR } }, ['user.email']],
      ['device.type', { user: { email: EMAIL }, device: { vendor_uuid: VENDOR } }, ['device.type']],
      ['device.vendor_uuid of a mobi device', { user: { email: EMAIL }, device: { type: 'mobi' } }, ['device.vendor_uuid']],
      ['everything inside', { user: {}, device: {} }, ['user.email', 'device.type']],
    ])('missing %s → 400 naming it', async (_name, body, fields) => {
      expectInvalid(await postJson(body), fields);
    });
  });

  describe('device.type values', () => {
    it.each(['MOBI', 'Othr', 'web', '', ' mobi', 'mobi ', 'mobile', 'other'])('type %j → 400 naming device.type', async (type) => {
      expectInvalid(await postJson({ user: { email: EMAIL }, device: { type, vendor_uuid: VENDOR } }), ['device.type']);
    });
  });

  describe('device.vendor_uuid values', () => {
    it.each([
      ['empty', ''],
      ['blank', '   '],
      ['not a uuid', 'not-a-uuid'],
      ['without dashes', VENDOR.replaceAll('-', '')],
      ['in braces', `{${VENDOR}}`],
      ['as a URN', `urn:uuid:${VENDOR}`],
      ['one digit short', VENDOR.slice(0, -1)],
      ['one digit long', `${VENDOR}0`],
      ['with a non-hex digit', `g${VENDOR.slice(1)}`],
      ['with dashes moved', '0f8fad5bd-9cb-469f-a165-70867728950e'],
      ['the nil uuid', '00000000-0000-0000-0000-000000000000'],
      ['the max uuid', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
      ['the max uuid in upper case', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'],
      ['the max uuid in mixed case', 'FFFFffff-ffff-FFFF-ffff-FFFFFFFFffff'],
      ['with a leading space', ` ${VENDOR}`],
      ['with a trailing space', `${VENDOR} `],
      ['with surrounding spaces', `  ${VENDOR}  `],
      ['with a trailing newline', `${VENDOR}\n`],
      ['with a NUL byte', `${VENDOR}\u0000`],
      ['with full-width digits', '０f8fad5b-d9cb-469f-a165-70867728950e'],
    ])('vendor_uuid %s → 400 naming device.vendor_uuid, for mobi and othr', async (_name, vendorUuid) => {
      for (const type of ['mobi', 'othr'] as const) {
        expectInvalid(await postJson({ user: { email: EMAIL }, device: { type, vendor_uuid: vendorUuid } }), [
          'device.vendor_uuid',
        ]);
      }
    });
  });

  describe('user.email values', () => {
    /** A syntactically valid address of exactly `length` characters (64-character local part). */
    const emailOfLength = (length: number) => {
      const local = 'a'.repeat(64);
      const tail = length - local.length - 1 - '.com'.length - 2 * 64; // two 63-char labels and their dots
      return `${local}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(tail)}.com`;
    };

    it('the helper builds addresses of the asked length', () => {
      expect(emailOfLength(254)).toHaveLength(254);
      expect(emailOfLength(255)).toHaveLength(255);
    });

    it.each([
      ['255 characters', emailOfLength(255)],
      ['255 characters with surrounding spaces', `  ${emailOfLength(255)}  `],
      ['1000 characters', `${'a'.repeat(64)}@${Array.from({ length: 15 }, () => 'b'.repeat(63)).join('.')}.com`],
    ])('an address of %s → 400 naming user.email', async (_name, email) => {
      expectInvalid(await postJson({ user: { email }, device: { type: 'othr' } }), ['user.email']);
    });

    it.each([
      '',
      '   ',
      'joe',
      'joe@',
      '@example.com',
      'joe@example',
      'joe@@example.com',
      'joe@example..com',
      'joe@-example.com',
      'joe@example.com.',
      'jo e@example.com',
      'joe@exa mple.com',
      'Joe <joe@example.com>',
      '"Joe" joe@example.com',
      'joe@example.com, ann@example.com',
      'joe@example.com\nBcc: victim@example.com',
      'joe@example.com\r\nBcc: victim@example.com',
      'joe\u0000@example.com',
      `${'a'.repeat(65)}@example.com`,
      'joe@[127.0.0.1]',
      'joe@127.0.0.1',
      'joe@localhost',
      'mailto:joe@example.com',
      // Lone UTF-16 surrogates (IsEmail lets them through in the domain; PostgreSQL cannot store them).
      'joe@exa\uD800mple.com',
      'joe@exa\uDC00mple.com',
      'joe@exa\uDC00\uD800mple.com',
      'joe@example.co\uDBFFm',
    ])('email %j → 400 naming user.email', async (email) => {
      expectInvalid(await postJson({ user: { email }, device: { type: 'othr' } }), ['user.email']);
    });
  });

  describe('unknown properties', () => {
    type Mutable = Record<string, Json> & { user: Record<string, Json>; device: Record<string, Json> };
    // Plain data objects: own keys such as `toString` are just JSON keys here.
    const base = () => JSON.parse(JSON.stringify(valid())) as Mutable;

    it.each<[string, (b: ReturnType<typeof base>) => void, string[]]>([
      ['status at the top', (b) => (b.status = 'confirmed'), ['status']],
      ['token at the top', (b) => (b.token = 'x'.repeat(43)), ['token']],
      ['uuid at the top', (b) => (b.uuid = 'ses-0f8fad5b-d9cb-469f-a165-70867728950e'), ['uuid']],
      ['otp_code at the top', (b) => (b.otp_code = '123456'), ['otp_code']],
      ['user.uuid', (b) => (b.user.uuid = 'usr-0f8fad5b-d9cb-469f-a165-70867728950e'), ['user.uuid']],
      ['user.Email (case matters)', (b) => (b.user.Email = EMAIL), ['user.Email']],
      ['user.id', (b) => (b.user.id = 1), ['user.id']],
      ['device.id', (b) => (b.device.id = 'dev-0f8fad5b-d9cb-469f-a165-70867728950e'), ['device.id']],
      ['device.uuid', (b) => (b.device.uuid = VENDOR), ['device.uuid']],
      ['device.vendorUuid (wrong spelling)', (b) => (b.device.vendorUuid = VENDOR), ['device.vendorUuid']],
      ['an empty key', (b) => (b[''] = 1), ['']],
      ['a key with a dot', (b) => (b['user.email'] = EMAIL), ['user.email']],
      ['toString', (b) => Object.assign(b, { toString: 1 }), ['toString']],
      ['hasOwnProperty', (b) => Object.assign(b, { hasOwnProperty: 1 }), ['hasOwnProperty']],
      ['valueOf in user', (b) => Object.assign(b.user, { valueOf: 1 }), ['user.valueOf']],
      ['hasOwnProperty in device', (b) => Object.assign(b.device, { hasOwnProperty: 'x' }), ['device.hasOwnProperty']],
      [
        'one at every level',
        (b) => {
          b.status = 'confirmed';
          b.token = 'abc';
          b.user.uuid = 'usr-x';
          b.device.id = 'dev-x';
        },
        ['status', 'token', 'user.uuid', 'device.id'],
      ],
    ])('%s → 400 validation_failed naming it', async (_name, mutate, fields) => {
      const body = base();
      mutate(body);
      expectInvalid(await postJson(body), fields);
    });

    it('an unknown property next to wrong fields names all of them', async () => {
      expectInvalid(await postJson({ user: { email: 7, admin: true }, device: { type: 'mobi' }, status: 'confirmed' }), [
        'user.email',
        'user.admin',
        'device.vendor_uuid',
        'status',
      ]);
    });

    it('1400 unknown properties (within 16 KiB) → 400 naming the first 20 and counting the rest, in a small answer', async () => {
      const body: Record<string, Json> = { ...valid() };
      for (let i = 0; i < 1400; i += 1) body[`k${i}`] = 0;
      expect(Buffer.byteLength(JSON.stringify(body))).toBeLessThanOrEqual(16 * 1024);
      const res = await postJson(body);
      expectError(res, 400, 'validation_failed', { fields: expect.any(Array) });
      expect(res.body.fields).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`));
      expect(res.body.message).toMatch(/; and 1380 more$/);
      expect(Buffer.byteLength(res.text)).toBeLessThan(2_048);
    });
  });

  describe('deep nesting', () => {
    it.each([
      ['arrays under an unknown key', (n: number) => `{"status":${'['.repeat(n)}${']'.repeat(n)}}`, 'status'],
      ['objects under an unknown key', (n: number) => `{"status":${'{"a":'.repeat(n / 4)}1${'}'.repeat(n / 4)}}`, 'status'],
      ['arrays as the email', (n: number) => `{"user":{"email":${'['.repeat(n)}${']'.repeat(n)}},"device":{"type":"othr"}}`, 'user.email'],
      ['objects as the vendor_uuid', (n: number) => `{"user":{"email":"a@example.com"},"device":{"type":"othr","vendor_uuid":${'{"a":'.repeat(n / 4)}1${'}'.repeat(n / 4)}}}`, 'device.vendor_uuid'],
    ])('%s, thousands of levels → 400, not 500', async (_name, build, field) => {
      const body = build(8000);
      expect(Buffer.byteLength(body)).toBeLessThanOrEqual(16 * 1024);
      const res = await postRaw(body);
      expectError(res, 400, 'validation_failed', { fields: expect.any(Array) });
      expect(res.body.fields).toContain(field);
    });
  });

  describe('prototype keys', () => {
    afterEach(() => {
      // The service runs in this process: a polluted Object.prototype would show here.
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(({} as Record<string, unknown>).email).toBeUndefined();
    });

    const user = `"user":{"email":"${EMAIL}"}`;
    const device = `"device":{"type":"mobi","vendor_uuid":"${VENDOR}"}`;

    it.each([
      ['__proto__ at the top', `{"__proto__":{"polluted":"yes"},${user},${device}}`, '__proto__'],
      ['__proto__ in user', `{"user":{"email":"${EMAIL}","__proto__":{"polluted":"yes"}},${device}}`, 'user.__proto__'],
      ['__proto__ in device', `{${user},"device":{"type":"mobi","vendor_uuid":"${VENDOR}","__proto__":{"polluted":"yes"}}}`, 'device.__proto__'],
      ['__proto__ as the user', `{"user":{"__proto__":{"email":"${EMAIL}"}},${device}}`, 'user.__proto__'],
      ['constructor at the top', `{"constructor":{"prototype":{"polluted":"yes"}},${user},${device}}`, 'constructor'],
      ['constructor in user', `{"user":{"email":"${EMAIL}","constructor":{"prototype":{"polluted":"yes"}}},${device}}`, 'user.constructor'],
      ['constructor in device', `{${user},"device":{"type":"othr","constructor":"x"}}`, 'device.constructor'],
      ['prototype at the top', `{"prototype":{"polluted":"yes"},${user},${device}}`, 'prototype'],
      ['__proto__ deep under an unknown key', `{"x":{"y":{"__proto__":{"polluted":"yes"}}},${user},${device}}`, 'x.y.__proto__'],
    ])('%s → 400 validation_failed naming it', async (_name, body, field) => {
      const res = await postRaw(body);
      expectError(res, 400, 'validation_failed', { fields: expect.any(Array) });
      expect(res.body.fields).toContain(field);
    });
  });

  describe('mode', () => {
    it.each([
      '/sessions',
      '/sessions?mode=',
      '/sessions?mode=sms',
      '/sessions?mode=EMAIL',
      '/sessions?mode=email%00',
      '/sessions?mode=%20email',
      '/sessions?mode=email&mode=email',
      '/sessions?mode[]=email',
      '/sessions?mode[x]=email',
      '/sessions?Mode=email',
      '/sessions?mode=%ZZ',
    ])('%s → 400 unsupported_mode', async (path) => {
      expectError(await request(t.http).post(path).send(valid()), 400, 'unsupported_mode');
    });

    it('a bad mode with a bad body is still a 4xx with a code', async () => {
      const res = await request(t.http).post('/sessions?mode=sms').send({ user: 1 });
      expect(res.status).toBe(400);
      expect(['unsupported_mode', 'validation_failed']).toContain(res.body.code);
    });
  });

  describe('unknown routes → 404 not_found', () => {
    it.each([
      ['get', '/index.html'], // `/` is the web page (WEB_UI): test/web-ui.e2e-spec.ts
      ['get', '/nope'],
      ['post', '/nope'],
      ['post', '/session?mode=email'],
      ['post', '/sessions/extra/segments?mode=email'],
      ['put', '/sessions'],
      ['get', '/sessions/ses-0f8fad5b-d9cb-469f-a165-70867728950e/otp/extra'],
      ['patch', '/sessions'],
      ['get', '/.env'],
      ['get', '/%2e%2e/%2e%2e/etc/passwd'],
    ] as const)('%s %s', async (method, path) => {
      const res = await request(t.http)[method](path);
      expectError(res, 404, 'not_found');
    });

    it.each([
      ['PATCH', '/sessions/%ZZ'],
      ['PATCH', '/sessions/%ED%A0%80'],
      ['GET', '/health/live%'],
      ['DELETE', '/sessions/ses-%'],
    ])('%s %s (not valid percent-encoding) → 400 bad_request, with a request id', async (method, path) => {
      const res = await request(t.http)[method.toLowerCase() as 'patch' | 'get' | 'delete'](path).set('Authorization', `Bearer ${existing.token}`);
      expectError(res, 400, 'bad_request');
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it.each([100, 5_000])('a session id of %i characters → 400 validation_failed (a malformed id, not a 414)', async (length) => {
      const res = await request(t.http).delete(`/sessions/ses-${'a'.repeat(length)}`).set('Authorization', `Bearer ${existing.token}`);
      expectError(res, 400, 'validation_failed', { fields: ['uuid'] });
    });
  });

  describe('PATCH /sessions/{uuid} with hostile input', () => {
    const auth = () => `Bearer ${existing.token}`;

    it.each([
      ['malformed JSON', '{"otp_code":', 'malformed_json'],
      ['a JSON string', '"123456"', 'malformed_json'],
      ['a JSON number', '123456', 'malformed_json'],
      ['a JSON null', 'null', 'malformed_json'],
    ])('%s → 400 %s, no attempt counted', async (_name, body, code) => {
      expectError(await patchSession(t, existing.uuid, { authorization: auth(), body }), 400, code);
    });

    it('a non-JSON content type → 415', async () => {
      const res = await request(t.http)
        .patch(`/sessions/${existing.uuid}`)
        .set('Authorization', auth())
        .set('Content-Type', 'text/plain')
        .send(`{"otp_code":"${existing.code}"}`);
      expectError(res, 415, 'unsupported_media_type');
    });

    it('a form body → 415', async () => {
      const res = await request(t.http)
        .patch(`/sessions/${existing.uuid}`)
        .set('Authorization', auth())
        .type('form')
        .send({ otp_code: existing.code });
      expectError(res, 415, 'unsupported_media_type');
    });

    it('a body over 16 KiB → 413', async () => {
      const body = JSON.stringify({ otp_code: existing.code, pad: 'x'.repeat(17 * 1024) });
      expectError(await patchSession(t, existing.uuid, { authorization: auth(), body }), 413, 'payload_too_large');
    });

    it.each<[string, Json]>([
      ['a number', 123456],
      ['null', null],
      ['true', true],
      ['an array', [existing?.code ?? '123456']],
      ['an object', { code: '123456' }],
      ['5 digits', '12345'],
      ['7 digits', '1234567'],
      ['letters', '12345a'],
      ['a leading space', ' 123456'],
      ['a trailing newline', '123456\n'],
      ['full-width digits', '１２３４５６'],
      ['Arabic-Indic digits', '١٢٣٤٥٦'],
      ['an empty string', ''],
    ])('otp_code as %s → 400 validation_failed naming otp_code, no attempt counted', async (_name, otpCode) => {
      expectInvalid(await patchSession(t, existing.uuid, { authorization: auth(), body: { otp_code: otpCode } }), ['otp_code']);
    });

    it.each<[string, Json, string[]]>([
      ['missing otp_code', {}, ['otp_code']],
      ['an unknown property', { otp_code: '123456', status: 'confirmed' }, ['status']],
      ['the token in the body', { otp_code: '123456', token: 'abc' }, ['token']],
      ['an array body', [], []],
    ])('%s → 400 validation_failed', async (_name, body, fields) => {
      expectInvalid(await patchSession(t, existing.uuid, { authorization: auth(), body: JSON.stringify(body) }), fields);
    });

    it('the right code next to an unknown property is refused, and the session stays pending', async () => {
      const body = { otp_code: existing.code, status: 'confirmed' };
      expectInvalid(await patchSession(t, existing.uuid, { authorization: auth(), body }), ['status']);
    });

    it('__proto__ in the body → 400 validation_failed naming it', async () => {
      const res = await patchSession(t, existing.uuid, {
        authorization: auth(),
        body: `{"otp_code":"123456","__proto__":{"polluted":"yes"}}`,
      });
      expectInvalid(res, ['__proto__']);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it.each([
      'not-an-id',
      'ses-not-a-uuid',
      'usr-0f8fad5b-d9cb-469f-a165-70867728950e',
      'ses-0f8fad5b-d9cb-469f-a165-70867728950e-0',
      'ses-0f8fad5bd9cb469fa16570867728950e',
      '0f8fad5b-d9cb-469f-a165-70867728950e',
    ])('session id %j → 400 validation_failed', async (id) => {
      expectError(
        await patchSession(t, id, { authorization: auth(), body: { otp_code: '123456' } }),
        400,
        'validation_failed',
        { fields: ['uuid'] },
      );
    });

    it.each([
      ['no Authorization', undefined],
      ['Basic credentials', `Basic ${Buffer.from('a:b').toString('base64')}`],
      ['Bearer without a token', 'Bearer'],
      ['Bearer with a token of bad characters', 'Bearer tok!en'],
      ['an over-long token', `Bearer ${'a'.repeat(2000)}`],
    ])('%s → 401 unauthorized', async (_name, authorization) => {
      const res = await patchSession(t, existing.uuid, { authorization, body: { otp_code: existing.code } });
      expectError(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    });

    it('an unknown but well-formed session id → 404 session_not_found', async () => {
      const res = await patchSession(t, 'ses-0f8fad5b-d9cb-469f-a165-70867728950e', {
        authorization: auth(),
        body: { otp_code: '123456' },
      });
      expectError(res, 404, 'session_not_found');
    });
  });

  describe('hostile headers on POST', () => {
    it.each([
      ['an over-long Authorization header', `Bearer ${'a'.repeat(8000)}`],
      ['a Basic Authorization header', 'Basic Zm9vOmJhcg=='],
    ])('%s with an invalid body → still the body error (the header is ignored)', async (_name, authorization) => {
      const res = await request(t.http).post('/sessions?mode=email').set('Authorization', authorization).send({ user: {} });
      expectInvalid(res, ['user.email', 'device']);
    });
  });
});

describe('requests that are not valid HTTP (refused by the HTTP parser, before the service sees them)', () => {
  it('a request must arrive whole within 30 s, body included (Fastify alone sets no limit)', async () => {
    const server: Server = t.app.getHttpServer();
    expect(server.requestTimeout).toBe(30_000);
  });

  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  /** Writes `bytes` on a new connection and returns everything the server sent until it closed. */
  async function exchange(bytes: string): Promise<string> {
    const server: Server = t.app.getHttpServer();
    if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.from(bytes, 'latin1')));
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString('utf8')));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
    });
  }

  it.each([
    ['a control character in the path', 'GET /sessions/\x01 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['an unknown method', 'BREW /sessions HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a header line without a colon', 'GET /health/live HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n'],
  ])('%s → 400 bad_request as JSON, and the connection is closed', async (_name, bytes) => {
    const answer = await exchange(bytes);
    const [head, body] = answer.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(head).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/);
    expect(head).toMatch(/\r\nConnection: close(\r\n|$)/);
    expect(JSON.parse(body)).toEqual(errorBody(400, 'bad_request'));
  });

  it('headers over Node\'s limit → 431 headers_too_large as JSON', async () => {
    const answer = await exchange(`GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    const [head, body] = answer.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(JSON.parse(body)).toEqual(errorBody(431, 'headers_too_large'));
  });

  it('a HEAD request that cannot be parsed → 400 with no body (a HEAD answer never has one)', async () => {
    const answer = await exchange('HEAD /sessions/\x01 HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toMatch(/\r\nContent-Length: 0\r\n/);
    expect(answer.endsWith('\r\n\r\n')).toBe(true);
  });
});

/**
 * One request over a raw HTTP connection, for what supertest cannot send byte for byte (encoded
 * bodies; `chunks` as an array are sent with `Transfer-Encoding: chunked`).
 */
async function rawRequest(
  t: TestApp,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | string[],
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Record<string, unknown> }> {
  const server: Server = t.app.getHttpServer();
  if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const chunked = Array.isArray(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: chunked ? { ...headers, 'Transfer-Encoding': 'chunked' } : { ...headers, 'Content-Length': body.length },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          expect(res.headers['content-type']).toMatch(/^application\/json/);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    if (chunked) for (const chunk of body) req.write(chunk);
    req.end(chunked ? undefined : body);
  });
}
