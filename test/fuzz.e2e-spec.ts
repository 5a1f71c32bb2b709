import fc from 'fast-check';
import { countRows, createConfirmedSession, createPendingSession, mailSettled, mobi, othr } from './support/factories.js';
import { LogCapture } from './support/observability.js';
import { type RawRequest, type RawResponse, sendRaw } from './support/raw-http.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * Property-based hostile input (fast-check): generated bodies, headers, paths, query strings and
 * methods sent byte for byte to every endpoint. Properties:
 *   - never a 5xx; every error is a JSON body with its status and a `code`, no stack trace;
 *   - after any 4xx, nothing changed: the row counts of users/devices/sessions/otp_sends, and the
 *     rows (every column and xmin, which any write changes) of an existing confirmed session and
 *     an existing pending one;
 *   - the process stays up (it answers /health/live at the end; no uncaught error, no polluted
 *     Object.prototype).
 *
 * Replay a failure with the seed printed at the start (fast-check prints it with the failing path
 * too): `FC_SEED=<seed> npm run test:e2e -- test/fuzz.e2e-spec.ts`. FC_NUM_RUNS changes the number
 * of runs per property (default 300).
 */

// One property runs a few hundred requests: seconds, or more on a busy machine (Vitest's default is 5 s).
vi.setConfig({ testTimeout: 60_000 });

const SEED = process.env.FC_SEED !== undefined && process.env.FC_SEED !== '' ? Number(process.env.FC_SEED) : Date.now() ^ 0;
const NUM_RUNS = Number(process.env.FC_NUM_RUNS || 300);
const BODY_LIMIT = 16 * 1024;
console.log(
  `fuzz: fast-check seed ${SEED}, ${NUM_RUNS} runs per property. Replay: FC_SEED=${SEED} npm run test:e2e -- test/fuzz.e2e-spec.ts`,
);

/** The devices of the two sessions every test starts from. */
const FIXTURE_CONFIRMED = { email: 'fuzz-confirmed@example.com', vendor: '0f8fad5b-d9cb-469f-a165-70867728950e' };
const FIXTURE_PENDING = { email: 'fuzz-pending@example.com' };

const ASSERT_OPTIONS = { seed: SEED, numRuns: NUM_RUNS, verbose: 1 } as const;

// ---------------------------------------------------------------- values ----

const SQL_FRAGMENTS = [
  "' OR 1=1 --",
  "' OR '1'='1",
  "'; DROP TABLE users; --",
  '"; DROP TABLE sessions; --',
  "1; SELECT pg_sleep(10) --",
  "' UNION SELECT token_hash FROM sessions --",
  "admin'--@example.com",
  "x@example.com' OR 1=1 --",
  "ses-' OR 1=1 --",
  '$1',
  '%',
  '\\',
  "\\'; --",
  '/* */',
  "'||(SELECT version())||'",
  '${7*7}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '../../etc/passwd',
];

/** Keys that reach prototypes or collide with DTO fields. */
const HOSTILE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
  'isPrototypeOf',
  'user',
  'device',
  'email',
  'type',
  'vendor_uuid',
  'otp_code',
  '$where',
  '$ne',
  '',
  ' ',
  'user.email',
  '0',
  'length',
];

const SPECIAL_STRINGS = [
  '',
  ' ',
  'mobi',
  'othr',
  'MOBI',
  ' mobi',
  'email',
  '123456',
  '000000',
  '12345',
  '1234567',
  '１２３４５６',
  '12345\u0000',
  '\u0000',
  'null',
  'undefined',
  'true',
  '__proto__',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '0f8fad5b-d9cb-469f-a165-70867728950e',
  '0F8FAD5B-D9CB-469F-A165-70867728950E',
  '{0f8fad5b-d9cb-469f-a165-70867728950e}',
  'joe@example.com',
  ' JOE@Example.COM ',
  'joe@example.com\n',
  'jöe@exämple.com',
  'joe@例え.jp',
  '"joe"@example.com',
  'a@b',
  '@example.com',
  'joe@@example.com',
  '\ud800@example.com',
  '\udfff',
  '\u202e@example.com',
  '\ufeffjoe@example.com',
  '🙂@example.com',
  'ⓙⓞⓔ@example.com',
];

const HUGE_STRINGS = fc.oneof(
  fc.integer({ min: 255, max: 400 }).map((n) => `${'a'.repeat(n - 12)}@example.com`),
  fc.integer({ min: 1_000, max: 17_000 }).map((n) => 'x'.repeat(n)),
  fc.integer({ min: 500, max: 6_000 }).map((n) => '🙂'.repeat(n)),
  fc.integer({ min: 2_000, max: 9_000 }).map((n) => '\\'.repeat(n)),
);

const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SPECIAL_STRINGS) },
  { weight: 2, arbitrary: fc.constantFrom(...SQL_FRAGMENTS) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.emailAddress() },
  { weight: 1, arbitrary: fc.tuple(fc.emailAddress(), fc.constantFrom(...SQL_FRAGMENTS)).map(([e, s]) => `${e}${s}`) },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: HUGE_STRINGS },
);

const hostileKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_KEYS) },
  { weight: 1, arbitrary: hostileString.filter((s) => s.length < 200) },
);

// ------------------------------------------------------------- JSON text ----

/** A JSON document as a tree, so that keys like `__proto__` and duplicate keys survive serialization. */
type Node =
  | { kind: 'value'; value: string | number | boolean | null }
  | { kind: 'array'; items: Node[] }
  | { kind: 'object'; entries: [string, Node][] }
  /** Text spliced in verbatim (for numbers JSON allows but JS does not round-trip, etc.). */
  | { kind: 'raw'; text: string };

/** `arb` in about `percent`% of the cases, else null. */
const sometimes = <T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: percent, arbitrary: arb }, { weight: 100 - percent, arbitrary: fc.constant(null) });

const value = (v: string | number | boolean | null): Node => ({ kind: 'value', value: v });
const object = (...entries: [string, Node][]): Node => ({ kind: 'object', entries });

function serialize(node: Node): string {
  switch (node.kind) {
    case 'value':
      return JSON.stringify(node.value) ?? 'null';
    case 'raw':
      return node.text;
    case 'array':
      return `[${node.items.map(serialize).join(',')}]`;
    case 'object':
      return `{${node.entries.map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`).join(',')}}`;
  }
}

const leaf: fc.Arbitrary<Node> = fc.oneof(
  { weight: 4, arbitrary: hostileString.map(value) },
  { weight: 1, arbitrary: fc.integer().map(value) },
  { weight: 1, arbitrary: fc.double().map(value) },
  { weight: 1, arbitrary: fc.boolean().map(value) },
  { weight: 1, arbitrary: fc.constant(value(null)) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('1e400', '-0', '123456', '1.0e6', '9007199254740993', '0.0000001', '-1e-400', '1E+2')
      .map((text): Node => ({ kind: 'raw', text })),
  },
);

const { node: jsonNode } = fc.letrec<{ node: Node; array: Node; object: Node }>((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('node'), { maxLength: 5 }).map((items): Node => ({ kind: 'array', items })),
  object: fc.array(fc.tuple(hostileKey, tie('node')), { maxLength: 5 }).map((entries): Node => ({ kind: 'object', entries })),
}));

/** Sometimes a field is left out (undefined), sometimes hostile, sometimes valid. */
const field = (valid: fc.Arbitrary<Node>): fc.Arbitrary<Node | undefined> =>
  fc.oneof({ weight: 8, arbitrary: valid }, { weight: 2, arbitrary: jsonNode }, { weight: 1, arbitrary: fc.constant(undefined) });

const extraEntries = fc.oneof(
  { weight: 8, arbitrary: fc.constant([] as [string, Node][]) },
  { weight: 2, arbitrary: fc.array(fc.tuple(hostileKey, jsonNode), { minLength: 1, maxLength: 3 }) },
);

const compact = (entries: [string, Node | undefined][]): [string, Node][] => entries.filter((e): e is [string, Node] => e[1] !== undefined);

const validEmail = fc.oneof(fc.emailAddress(), fc.constantFrom('joe@example.com', ' Fuzz@Example.com ')).map(value);
const validVendor = fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase())).map(value);

/** A body shaped like a login, each part valid, missing, or hostile; plus hostile extra keys. */
const loginBody: fc.Arbitrary<Node> = fc
  .record({
    email: field(validEmail),
    type: field(fc.constantFrom('mobi', 'othr').map(value)),
    vendor: field(validVendor),
    userExtra: extraEntries,
    deviceExtra: extraEntries,
    rootExtra: extraEntries,
    userNode: sometimes(jsonNode, 10),
    deviceNode: sometimes(jsonNode, 10),
  })
  .map(({ email, type, vendor, userExtra, deviceExtra, rootExtra, userNode, deviceNode }) =>
    object(
      ...compact([
        ['user', userNode ?? object(...compact([['email', email]]), ...userExtra)],
        ['device', deviceNode ?? object(...compact([['type', type], ['vendor_uuid', vendor]]), ...deviceExtra)],
      ]),
      ...rootExtra,
    ),
  );

/**
 * A valid login: a fresh address, one of a few addresses used again and again (so that the
 * per-device cooldown and the hourly cap answer 429), or the fixtures' own devices (200 with their
 * token, else 429: the clock stands still inside their cooldown).
 */
const validLogin: fc.Arbitrary<Node> = fc
  .record({
    email: fc.oneof(
      fc.emailAddress(),
      fc.constantFrom('again-1@example.com', 'again-2@example.com', ' AGAIN-3@Example.com ', FIXTURE_CONFIRMED.email, FIXTURE_PENDING.email),
    ),
    device: fc.oneof(
      fc.constant({ type: 'othr' } as Record<string, string>),
      fc.uuid().map((u) => ({ type: 'othr', vendor_uuid: u })),
      fc.uuid().map((u) => ({ type: 'mobi', vendor_uuid: u })),
      fc.constant({ type: 'mobi', vendor_uuid: FIXTURE_CONFIRMED.vendor }),
    ),
  })
  .map(({ email, device }) =>
    object(['user', object(['email', value(email)])], ['device', object(...Object.entries(device).map(([k, v]): [string, Node] => [k, value(v)]))]),
  );

/** A body shaped like a confirmation. */
const confirmBody: fc.Arbitrary<Node> = fc
  .record({
    code: field(fc.oneof(fc.stringMatching(/^\d{6}$/), fc.constant('123456')).map(value)),
    extra: extraEntries,
  })
  .map(({ code, extra }) => object(...compact([['otp_code', code]]), ...extra));

/** Nesting thousands deep, inside and outside the DTO's fields. */
const deepBody: fc.Arbitrary<string> = fc
  .record({
    depth: fc.integer({ min: 20, max: 8_000 }),
    open: fc.constantFrom('[', '{"a":', '{"__proto__":', '{"user":', '{"otp_code":'),
    where: fc.constantFrom('root', 'email', 'device', 'otp_code'),
  })
  .map(({ depth, open, where }) => {
    const close = open === '[' ? ']' : '}';
    const deep = `${open.repeat(depth)}1${close.repeat(depth)}`;
    switch (where) {
      case 'root':
        return deep;
      case 'email':
        return `{"user":{"email":${deep}},"device":{"type":"mobi","vendor_uuid":"0f8fad5b-d9cb-469f-a165-70867728950e"}}`;
      case 'device':
        return `{"user":{"email":"deep@example.com"},"device":${deep}}`;
      default:
        return `{"otp_code":${deep}}`;
    }
  });

/** Valid-looking bodies padded to within a few bytes of the 16 KiB limit, either side. */
const nearLimitBody: fc.Arbitrary<string> = fc
  .record({ delta: fc.integer({ min: -40, max: 40 }), how: fc.constantFrom('space', 'string', 'key') })
  .map(({ delta, how }) => {
    const base = `{"user":{"email":"limit@example.com"},"device":{"type":"othr"}`;
    const target = BODY_LIMIT + delta;
    if (how === 'space') return `${base}${' '.repeat(Math.max(0, target - base.length - 1))}}`;
    if (how === 'string') return `${base},"pad":"${'p'.repeat(Math.max(0, target - base.length - 10))}"}`;
    return `${base},"${'k'.repeat(Math.max(0, target - base.length - 7))}":1}`;
  });

/** Text that is not (quite) JSON, or JSON that is not an object. */
const notJsonBody: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constantFrom(
    '',
    '{',
    '}',
    '{"user":',
    '{"a":1}garbage',
    '{"a":1}{"b":2}',
    "{'user':1}",
    '{user:1}',
    '{"a":1,}',
    '/* c */{}',
    '\ufeff{}',
    'null',
    'true',
    '1',
    '"str"',
    '[]',
    '[{"user":{"email":"a@b.co"}}]',
    'NaN',
    '{"a":NaN}',
    '{"a":1e999999}',
    '\u0000',
  ).map((s) => Buffer.from(s, 'utf8')),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s, 'utf8')),
  fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => Buffer.from(s, 'utf16le')),
);

/** Any body: structured JSON for `shaped`, random JSON, deep, near the limit, not JSON, or none. */
const bodyFor = (shaped: fc.Arbitrary<Node>): fc.Arbitrary<Buffer | undefined> =>
  fc.oneof(
    { weight: 10, arbitrary: shaped.map((n) => Buffer.from(serialize(n), 'utf8')) },
    { weight: 3, arbitrary: jsonNode.map((n) => Buffer.from(serialize(n), 'utf8')) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null', 'utf8')) },
    { weight: 1, arbitrary: deepBody.map((s) => Buffer.from(s, 'utf8')) },
    { weight: 1, arbitrary: nearLimitBody.map((s) => Buffer.from(s, 'utf8')) },
    { weight: 2, arbitrary: notJsonBody },
    { weight: 2, arbitrary: fc.constant(undefined) },
  );

// --------------------------------------------------------------- headers ----

/** Any string as an HTTP header value: its UTF-8 bytes as latin1, without the bytes HTTP forbids. */
const headerSafe = (s: string): string =>
  Buffer.from(s, 'utf8')
    .toString('latin1')
    // eslint-disable-next-line no-control-regex
    .replace(/[^\t\x20-\x7e\x80-\xff]/g, '')
    .slice(0, 6_000);

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=UTF-8',
  'application/json;charset="utf-8"',
  'application/json; charset=latin1',
  'application/json; charset=iso-8859-1',
  'application/json; charset=utf-16',
  'application/json; charset=utf-16le',
  'application/json; charset=bogus',
  'application/json; charset=',
  'application/json; boundary=x; charset=utf-8; q=1',
  'APPLICATION/JSON',
  'application/vnd.api+json',
  'application/merge-patch+json',
  'application/+json',
  'application/json-seq',
  'text/json',
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'application/xml',
  'application/octet-stream',
  '*/*',
  'application/*',
  '',
  ';',
  'json',
  '/',
  'application/json, text/plain',
];

const CONTENT_ENCODINGS = ['identity', 'gzip', 'deflate', 'br', 'x-gzip', 'compress', 'bogus', 'gzip, gzip', 'IDENTITY', ''];

const ipLike = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.constantFrom('unknown', '127.0.0.1', '::1', '::ffff:10.0.0.1', '0.0.0.0', '999.999.999.999', '1.2.3', ' ', '_hidden', '[::1]:80', 'fe80::1%eth0'),
  hostileString.map(headerSafe),
);

/** Near misses of a real token. */
const TOKEN_VARIANTS: ((token: string) => string)[] = [
  (t) => `bEaReR ${t}`,
  (t) => `Bearer ${t} `,
  (t) => `Bearer  ${t}`,
  (t) => `Bearer ${t}=`,
  (t) => `Bearer ${t.toUpperCase()}`,
  (t) => `Bearer ${t.slice(1)}`,
  (t) => `Bearer ${t}, Bearer ${t}`,
  (t) => `Basic ${t}`,
  (t) => t,
];

interface Tokens {
  confirmed: string;
  pending: string;
}

/** Authorization header values; `tokens` are real ones the request may carry. */
const authorizationFor = (tokens: string[]): fc.Arbitrary<string | undefined> => {
  const unknown = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('base64url'));
  const malformed = fc.constantFrom(
    'Bearer',
    'Bearer ',
    'Bearer  ',
    'bearer',
    'Basic dXNlcjpwYXNz',
    'Token abc',
    'Bearer a b',
    'Bearer ====',
    'Bearer null',
    'Bearer undefined',
    "Bearer ' OR 1=1 --",
    'Bearer ' + 'a'.repeat(513),
    'Bearer ' + 'A'.repeat(5_000),
    'Bearer\t' + 'x'.repeat(43),
    ',Bearer x',
  );
  const choices: fc.WeightedArbitrary<string | undefined>[] = [
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: unknown.map((t) => `Bearer ${t}`) },
    { weight: 2, arbitrary: malformed },
    { weight: 1, arbitrary: hostileString.map((s) => `Bearer ${headerSafe(s)}`) },
    { weight: 1, arbitrary: hostileString.map(headerSafe) },
  ];
  if (tokens.length > 0) {
    const real = fc.constantFrom(...tokens);
    choices.push(
      { weight: 6, arbitrary: real.map((t) => `Bearer ${t}`) },
      {
        weight: 3,
        arbitrary: fc.tuple(real, fc.constantFrom(...TOKEN_VARIANTS)).map(([t, variant]) => variant(t)),
      },
    );
  }
  return fc.oneof(...choices);
};

/** Headers of one request: content type, encoding, proxies, origin, and a few random ones. */
const headersFor = (tokens: string[]): fc.Arbitrary<Record<string, string>> =>
  fc
    .record({
      authorization: authorizationFor(tokens),
      contentType: fc.option(
        fc.oneof(
          { weight: 16, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
          { weight: 4, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
          { weight: 1, arbitrary: hostileString.map(headerSafe) },
        ),
        { freq: 10 },
      ),
      contentEncoding: sometimes(fc.constantFrom(...CONTENT_ENCODINGS), 8),
      forwardedFor: sometimes(fc.oneof(ipLike, fc.array(ipLike, { minLength: 2, maxLength: 4 }).map((ips) => ips.join(', '))), 30),
      origin: sometimes(fc.oneof(fc.constantFrom('https://app.example.com', 'https://evil.example.com', 'null'), hostileString.map(headerSafe)), 30),
      userAgent: sometimes(fc.oneof(hostileString.map(headerSafe), fc.constant('x'.repeat(3_000))), 30),
      accept: sometimes(fc.constantFrom('application/json', 'text/html', '*/*', 'application/xml', ''), 30),
      others: fc.array(
        fc.tuple(
          fc.constantFrom(
            'X-HTTP-Method-Override',
            'X-Request-Id',
            'Forwarded',
            'X-Real-IP',
            'Cookie',
            'Expect',
            'Range',
            'If-None-Match',
            'Access-Control-Request-Method',
            'Access-Control-Request-Headers',
            'X-Custom',
          ),
          fc.oneof(fc.constantFrom('DELETE', 'PATCH', 'GET', '100-continue', 'bytes=0-1', '*', 'x'.repeat(200)), hostileString.map(headerSafe)),
        ),
        { maxLength: 3 },
      ),
    })
    .map(({ authorization, contentType, contentEncoding, forwardedFor, origin, userAgent, accept, others }) => {
      const headers: Record<string, string> = {};
      for (const [name, v] of others) headers[name] = v;
      // "Expect: 100-continue" on a request whose body is sent at once only delays it; anything
      // else there is answered 417 by Node before the app: both fine, but not worth the waiting.
      delete headers.Expect;
      if (authorization !== undefined) headers.Authorization = authorization;
      if (contentType !== null) headers['Content-Type'] = contentType;
      if (contentEncoding !== null) headers['Content-Encoding'] = contentEncoding;
      if (forwardedFor !== null) headers['X-Forwarded-For'] = forwardedFor;
      if (origin !== null) headers.Origin = origin;
      if (userAgent !== null) headers['User-Agent'] = userAgent;
      if (accept !== null) headers.Accept = accept;
      return headers;
    });

// ------------------------------------------------------ paths and queries ----

/** Percent-encodes every byte of the UTF-8 form outside RFC 3986's unreserved set (lone surrogates become U+FFFD). */
const pctEncode = (s: string): string =>
  [...Buffer.from(s, 'utf8')]
    .map((b) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');

/** A path segment sent raw: characters U+0021..U+00FF except / ? #. */
const rawSegment = fc
  .string({ unit: fc.integer({ min: 0x21, max: 0xff }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 30 })
  .map((s) => s.replace(/[/?#]/g, '_'));

const segment: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('sessions', 'current', 'otp', 'health', 'live', 'ready', 'metrics', 'docs', 'docs-json', '..', '.', '%2e%2e', '%2F', '%00', '%ZZ', '%', '%u0041', '~', '*', '') },
  { weight: 3, arbitrary: hostileString.filter((s) => s.length < 300).map(pctEncode) },
  { weight: 1, arbitrary: rawSegment },
);

/** Session ids for `/sessions/{uuid}`: the existing ones, unknown ones, and malformed ones. */
const sessionIdFor = (existing: string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...existing) },
    { weight: 1, arbitrary: fc.constantFrom(...existing).map((id) => `ses-${id.slice(4).toUpperCase()}`) },
    { weight: 1, arbitrary: fc.constantFrom(...existing).map((id) => id.toUpperCase()) },
    { weight: 2, arbitrary: fc.uuid().map((u) => `ses-${u}`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'ses-',
        'ses-00000000-0000-0000-0000-000000000000',
        'usr-0f8fad5b-d9cb-469f-a165-70867728950e',
        'ses-0f8fad5b-d9cb-469f-a165-70867728950e0',
        'ses-0f8fad5bd9cb469fa16570867728950e',
        "ses-'%20OR%201=1%20--",
        'ses-%00',
        'current',
        '__proto__',
        'constructor',
        'ses-' + 'a'.repeat(4_000),
      ),
    },
    { weight: 2, arbitrary: segment },
  );

/** Query strings: `mode` right, wrong, repeated, nested; prototype keys; random pairs. */
const queryString: fc.Arbitrary<string> = fc
  .record({
    mode: fc.constantFrom(
      'mode=email',
      'mode=email',
      'mode=email',
      'mode=email',
      'mode=email',
      'mode=email',
      'mode=email',
      'mode=email',
      'mode=EMAIL',
      'mode=',
      'mode',
      'mode=email&mode=email',
      'mode=email&mode=sms',
      'mode[]=email',
      'mode[0]=email',
      'mode[toString]=email',
      'mode=email%00',
      'mode=%65mail',
      'mode=sms',
      'Mode=email',
      '',
    ),
    extra: fc.array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom('__proto__', 'constructor[prototype][polluted]', '__proto__[polluted]', 'user[email]', 'a[b][c]', 'mode', 'mode[]'),
          segment,
        ),
        fc.oneof({ weight: 6, arbitrary: hostileString.filter((s) => s.length < 300).map(pctEncode) }, { weight: 1, arbitrary: rawSegment }),
      ),
      { maxLength: 2 },
    ),
    order: fc.boolean(),
  })
  .map(({ mode, extra, order }) => {
    const pairs = extra.map(([k, v]) => `${k}=${v}`);
    const all = order ? [mode, ...pairs] : [...pairs, mode];
    return all.filter(Boolean).join('&');
  });

const withQuery = (path: string, query: string) => (query ? `${path}?${query}` : path);

// ------------------------------------------------------------------ tests ----

describe('fuzz: generated hostile requests to every endpoint', () => {
  let t: TestApp;
  let logs: LogCapture;
  let confirmed: { uuid: string; token: string };
  let pending: { uuid: string; token: string };
  let tokens: Tokens;
  let pendingRowAtStart: Record<string, unknown>;
  const processErrors: unknown[] = [];
  const onProcessError = (error: unknown) => processErrors.push(error);
  let prototypeKeys: string[];
  /** `status code` answers seen, per property: printed, and checked so that no property is vacuous. */
  const seen = new Map<string, Map<string, number>>();
  /** The slowest request, printed at the end. */
  const slowest = { ms: 0, what: '' };
  const seenIn = (label: string) => seen.get(label) ?? new Map<string, number>();

  beforeAll(async () => {
    process.on('uncaughtException', onProcessError);
    process.on('unhandledRejection', onProcessError);
    prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    logs = new LogCapture();
    // The per-IP limit on (high enough never to answer 429) so that the limiter sees every request,
    // with X-Forwarded-For believed, and CORS on for one origin.
    t = await createTestApp(
      { RATE_LIMIT_PER_MINUTE: '1000000', TRUST_PROXY: 'true', CORS_ORIGINS: 'https://app.example.com', LOG_LEVEL: 'warn' },
      { logStream: logs },
    );
    const c = await createConfirmedSession(t, mobi(FIXTURE_CONFIRMED.email, FIXTURE_CONFIRMED.vendor));
    const p = await createPendingSession(t, othr(FIXTURE_PENDING.email));
    confirmed = { uuid: c.uuid, token: c.token };
    pending = { uuid: p.uuid, token: p.token };
    tokens = { confirmed: c.token, pending: p.token };
    await mailSettled(t);
    pendingRowAtStart = await rowOf(pending.uuid);
  });

  afterAll(async () => {
    process.off('uncaughtException', onProcessError);
    process.off('unhandledRejection', onProcessError);
    const table = [...seen].map(([label, answers]) => `  ${label}: ${[...answers].sort().map(([k, n]) => `${k} ×${n}`).join(', ')}`);
    const problems = logs?.entries.filter((e) => (e.level ?? 0) >= 40).map((e) => String(e.msg ?? e.unparsable ?? JSON.stringify(e)).slice(0, 200)) ?? [];
    if (problems.length > 0) console.log(`fuzz: the service logged ${problems.length} warning(s)/error(s), e.g.\n  ${[...new Set(problems)].slice(0, 10).join('\n  ')}`);
    console.log(`fuzz: answers seen (seed ${SEED})\n${table.join('\n')}\n  slowest request: ${Math.round(slowest.ms)} ms, ${slowest.what}`);
    await t?.close();
  });

  /** Every column of a sessions row, plus xmin (any write to the row changes it). */
  async function rowOf(uuid: string): Promise<Record<string, unknown>> {
    const rows = await t.db.query(`SELECT xmin::text AS xmin, s.* FROM sessions s WHERE s.id = $1`, [uuid.slice(4)]);
    return rows[0];
  }

  async function snapshot() {
    const [counts, confirmedRow, pendingRow] = await Promise.all([countRows(t), rowOf(confirmed.uuid), rowOf(pending.uuid)]);
    return { counts, confirmedRow, pendingRow };
  }

  /** Sends the request and checks the properties; returns the response for extra checks. */
  async function check(label: string, req: RawRequest): Promise<RawResponse> {
    const before = await snapshot();
    const started = performance.now();
    const res = await sendRaw(t, req);
    const elapsed = performance.now() - started;
    if (elapsed > slowest.ms) Object.assign(slowest, { ms: elapsed, what: `${label} ${req.method} ${req.path.slice(0, 120)} ${JSON.stringify(req.headers).slice(0, 300)} body ${req.body?.length ?? '-'} bytes: ${req.body?.subarray(0, 200).toString()} → ${res.status} ${res.text.slice(0, 150)}` });
    const answers = seen.get(label) ?? new Map<string, number>();
    seen.set(label, answers);
    let code = '';
    try {
      code = res.status >= 400 && res.text ? String(JSON.parse(res.text).code) : '';
    } catch {
      code = '(not JSON)';
    }
    const answer = `${res.status}${code ? ` ${code}` : ''}`;
    answers.set(answer, (answers.get(answer) ?? 0) + 1);
    const where = `${req.method} ${req.path.slice(0, 200)} → ${res.status} ${res.text.slice(0, 300)}`;

    if (res.status === 0) {
      // Only a body the server refused before reading it all may see its connection closed.
      if (!(req.body && req.body.length > BODY_LIMIT)) throw new Error(`Connection closed without an answer: ${where}`);
    } else {
      if (res.status >= 500) throw new Error(`5xx: ${where}`);
      if (res.status >= 400 && res.text.length > 0) {
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(res.text);
        } catch {
          throw new Error(`Error body is not JSON: ${where}`);
        }
        if (!/^application\/json/.test(String(res.headers['content-type']))) throw new Error(`Error without a JSON content type: ${where}`);
        if (body.statusCode !== res.status || typeof body.code !== 'string' || typeof body.message !== 'string') {
          throw new Error(`Error body without statusCode/code/message: ${where}`);
        }
        if (/QueryFailedError|node_modules|\bat \S+ \(\S+:\d+:\d+\)|\/src\/\S+\.ts/.test(res.text)) {
          throw new Error(`Error body leaks internals: ${where}`);
        }
      }
    }
    if (res.status >= 400 || res.status === 0) {
      const after = await snapshot();
      if (JSON.stringify(after.counts) !== JSON.stringify(before.counts)) {
        throw new Error(`Row counts changed by a ${res.status}: ${JSON.stringify(before.counts)} → ${JSON.stringify(after.counts)}: ${where}`);
      }
      expect({ where, row: after.confirmedRow }).toEqual({ where, row: before.confirmedRow });
      expect({ where, row: after.pendingRow }).toEqual({ where, row: before.pendingRow });
    }
    for (const token of [tokens.confirmed, tokens.pending]) {
      if (res.status >= 400 && res.text.includes(token)) throw new Error(`A token in an error body: ${where}`);
    }
    return res;
  }

  const run = (property: Parameters<typeof fc.assert>[0]) => fc.assert(property, ASSERT_OPTIONS);

  /**
   * The property was not vacuous: its requests got past the HTTP layer into these answers (each
   * seen in well over 5% of the runs, so missing from a few hundred runs means something broke).
   */
  function expectReached(label: string, answers: string[]): void {
    if (NUM_RUNS < 100) return;
    const got = [...seenIn(label).keys()];
    for (const answer of answers) expect({ label, answer, seen: got.includes(answer) }).toEqual({ label, answer, seen: true });
  }

  it('POST /sessions?mode=…: generated bodies, headers and query strings', async () => {
    await run(
      fc.asyncProperty(
        fc.oneof({ weight: 1, arbitrary: validLogin.map((n) => Buffer.from(serialize(n), 'utf8')) }, { weight: 3, arbitrary: bodyFor(loginBody) }),
        headersFor([tokens.confirmed, tokens.pending]),
        fc.oneof(fc.constant('mode=email'), queryString),
        fc.integer({ min: 1, max: 4 }),
        async (body, headers, query, chunks) => {
          await check('POST /sessions', { method: 'POST', path: withQuery('/sessions', query), headers, body, chunks });
        },
      ),
    );
    expectReached('POST /sessions', ['201', '400 validation_failed', '400 unsupported_mode', '415 unsupported_media_type']);
  });

  it('PATCH /sessions/{uuid}: generated ids, bodies and headers', async () => {
    // Not with the pending session's own token: a well-formed wrong code then rightly counts an attempt.
    await run(
      fc.asyncProperty(
        sessionIdFor([confirmed.uuid, pending.uuid]),
        bodyFor(confirmBody),
        headersFor([tokens.confirmed]),
        fc.option(queryString, { freq: 2, nil: undefined }),
        async (id, body, headers, query) => {
          await check('PATCH /sessions/{uuid}', { method: 'PATCH', path: withQuery(`/sessions/${id}`, query ?? ''), headers, body });
        },
      ),
    );
    expectReached('PATCH /sessions/{uuid}', ['400 validation_failed', '401 unauthorized']);
  });

  it('POST /sessions/{uuid}/otp: generated ids, bodies and headers', async () => {
    // With the pending session's own token it is inside its resend cooldown (the clock stands still): 429.
    await run(
      fc.asyncProperty(
        sessionIdFor([confirmed.uuid, pending.uuid]),
        bodyFor(jsonNode),
        headersFor([tokens.confirmed, tokens.pending]),
        async (id, body, headers) => {
          await check('POST /sessions/{uuid}/otp', { method: 'POST', path: `/sessions/${id}/otp`, headers, body });
        },
      ),
    );
    expectReached('POST /sessions/{uuid}/otp', ['401 unauthorized']);
  });

  it('DELETE /sessions/{uuid}: generated ids, bodies and headers', async () => {
    await run(
      fc.asyncProperty(
        sessionIdFor([confirmed.uuid, pending.uuid]),
        bodyFor(jsonNode),
        headersFor([tokens.confirmed, tokens.pending]),
        fc.uuid(),
        async (id, body, headers, spare) => {
          // A session's own token rightly revokes it (204): keep the two fixtures alive by aiming
          // requests that carry one of their tokens at an unknown id instead.
          const auth = headers.Authorization ?? '';
          const own = [tokens.confirmed, tokens.pending].some((token) => auth.toLowerCase().includes(token.toLowerCase()));
          const fixture = [confirmed.uuid, pending.uuid].some((uuid) => id.toLowerCase().includes(uuid.slice(4)));
          const target = own && fixture ? `ses-${spare}` : id;
          await check('DELETE /sessions/{uuid}', { method: 'DELETE', path: `/sessions/${target}`, headers, body });
        },
      ),
    );
    expectReached('DELETE /sessions/{uuid}', ['401 unauthorized']);
  });

  it('GET /sessions and GET /sessions/current: generated headers, bodies and query strings', async () => {
    await run(
      fc.asyncProperty(
        fc.constantFrom('/sessions', '/sessions/current', '/sessions/', '/sessions/current/', '/SESSIONS/current', '/sessions//current'),
        headersFor([tokens.confirmed, tokens.pending]),
        fc.option(bodyFor(jsonNode), { freq: 3, nil: undefined }),
        fc.option(queryString, { freq: 3, nil: undefined }),
        async (path, headers, body, query) => {
          const res = await check('GET /sessions[/current]', { method: 'GET', path: withQuery(path, query ?? ''), headers, body: body ?? undefined });
          if (res.status === 200) expect(res.text).not.toContain(tokens.confirmed);
        },
      ),
    );
    expectReached('GET /sessions[/current]', ['200', '401 unauthorized']);
  });

  it('any method on any path: never a 5xx, unknown routes are 404 JSON', async () => {
    const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'PURGE', 'SEARCH', 'LOCK', 'COPY', 'QUERY', 'FOO'];
    await run(
      fc.asyncProperty(
        fc.constantFrom(...METHODS),
        fc.oneof(
          fc.array(segment, { minLength: 0, maxLength: 5 }).map((parts) => `/${parts.join('/')}`),
          fc.tuple(fc.constantFrom('/sessions', '/health', '/metrics', '/docs', '/docs-json', '//sessions', '/sessions/'), fc.array(segment, { maxLength: 3 })).map(
            ([prefix, parts]) => [prefix, ...parts].join('/'),
          ),
          fc.constantFrom('*', '/', '/sessions/current/../current', '/./sessions', '/%73essions', `/sessions/%2e%2e/health/live`, '/' + 'a/'.repeat(2_000)),
        ),
        fc.option(queryString, { freq: 2, nil: undefined }),
        headersFor([]),
        fc.option(bodyFor(jsonNode), { freq: 2, nil: undefined }),
        async (method, path, query, headers, body) => {
          const res = await check('any method, any path', { method, path: withQuery(path, query ?? ''), headers, body: method === 'HEAD' ? undefined : (body ?? undefined) });
          if (res.status === 404 && res.text) expect(JSON.parse(res.text)).toMatchObject({ statusCode: 404 });
        },
      ),
    );
    expectReached('any method, any path', ['404 not_found']);
  });

  it('afterwards: the process is up, the fixtures are intact, nothing was polluted', async () => {
    const live = await sendRaw(t, { method: 'GET', path: '/health/live', headers: {} });
    expect({ status: live.status, body: JSON.parse(live.text) }).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await sendRaw(t, { method: 'GET', path: '/health/ready', headers: {} })).status).toBe(200);
    const current = await sendRaw(t, { method: 'GET', path: '/sessions/current', headers: { Authorization: `Bearer ${tokens.confirmed}` } });
    expect(current.status).toBe(200);
    expect(JSON.parse(current.text)).toMatchObject({ uuid: confirmed.uuid, status: 'confirmed' });
    expect(await rowOf(pending.uuid)).toEqual(pendingRowAtStart);
    expect(processErrors).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The service logged no unhandled error (a 5xx would have been one).
    expect(logs.entries.filter((e) => /Unhandled error/.test(JSON.stringify(e)))).toEqual([]);
  });
});
