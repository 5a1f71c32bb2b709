import SwaggerParser from '@apidevtools/swagger-parser';
import request from 'supertest';
import { createTestApp, type TestApp } from './support/test-app.js';
import { confirm, createConfirmedSession, createPendingSession, mobi, nextCode, othr, uniqueEmail } from './support/factories.js';

/**
 * The OpenAPI document (@nestjs/swagger) served at /docs-json, with its UI at /docs: a valid
 * OpenAPI 3 document, validated by @apidevtools/swagger-parser, that describes every route the app
 * really serves, with its bodies, every response status, the error body, examples and the bearer
 * scheme; and whose schemas match what the endpoints really answer.
 */

type Json = Record<string, any>;

/**
 * @apidevtools/swagger-parser on a copy of `doc`: `validate` checks it against the OpenAPI 3 schema
 * and its references; `dereference` returns it with every $ref resolved.
 */
async function swaggerParser(action: 'validate' | 'dereference', doc: unknown): Promise<{ ok: true; api: Json } | { ok: false; error: string }> {
  try {
    const api = await SwaggerParser[action](structuredClone(doc) as never);
    return { ok: true, api: api as Json };
  } catch (error) {
    return { ok: false, error: String((error as Error)?.message ?? error) };
  }
}
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const ERROR_REF = '#/components/schemas/ApiErrorDto';

/** "METHOD /path" of every route registered with Fastify, `:param` written `{param}`. */
function servedRoutes(t: TestApp): string[] {
  const routes = new Set<string>();
  for (const { method, url } of t.routes) {
    // The OpenAPI UI and document themselves, and wildcard routes (static files, CORS preflight).
    if (url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs-')) continue;
    // The web page (WEB_UI, src/web-ui/): HTML for people, not an API operation; its assets are under /web/*.
    if (url === '/') continue;
    if (url.includes('*')) continue;
    // Fastify answers HEAD for every GET route by itself.
    if (method === 'HEAD' && t.routes.some((r) => r.method === 'GET' && r.url === url)) continue;
    routes.add(`${method} ${url.replace(/:(\w+)/g, '{$1}')}`);
  }
  return [...routes].sort();
}

/** "METHOD /path" of every operation in the document. */
function documentedRoutes(doc: Json): string[] {
  const routes: string[] = [];
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    for (const method of HTTP_METHODS) if (item[method]) routes.push(`${method.toUpperCase()} ${path}`);
  }
  return routes.sort();
}

function operation(doc: Json, route: string): Json {
  const [method, path] = route.split(' ');
  const op = doc.paths[path]?.[method.toLowerCase()];
  if (!op) throw new Error(`${route} is not documented`);
  return op;
}

/**
 * Problems of `value` against an OpenAPI 3.0 schema (dereferenced): type, nullable, required,
 * no undocumented properties, enum, pattern, date-time format, array items.
 */
function schemaProblems(schema: Json, value: unknown, at = '$'): string[] {
  if (value === null) return schema.nullable ? [] : [`${at}: null but not nullable`];
  const problems: string[] = [];
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: not an object`];
      const properties: Json = schema.properties ?? {};
      for (const key of schema.required ?? []) if (!(key in (value as Json))) problems.push(`${at}.${key}: required but missing`);
      for (const [key, child] of Object.entries(value as Json)) {
        if (!(key in properties)) problems.push(`${at}.${key}: not documented`);
        else problems.push(...schemaProblems(properties[key], child, `${at}.${key}`));
      }
      return problems;
    }
    case 'array':
      if (!Array.isArray(value)) return [`${at}: not an array`];
      return value.flatMap((item, i) => schemaProblems(schema.items, item, `${at}[${i}]`));
    case 'string':
      if (typeof value !== 'string') return [`${at}: not a string`];
      if (schema.pattern && !new RegExp(schema.pattern).test(value)) problems.push(`${at}: does not match ${schema.pattern}`);
      if (schema.format === 'date-time' && Number.isNaN(Date.parse(value))) problems.push(`${at}: not a date-time`);
      break;
    case 'number':
    case 'integer':
      if (typeof value !== 'number') return [`${at}: not a number`];
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return [`${at}: not a boolean`];
      break;
    default:
      return [`${at}: schema without a type`];
  }
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: ${String(value)} not in ${schema.enum.join('|')}`);
  return problems;
}

describe('OpenAPI: GET /docs and /docs-json', () => {
  let t: TestApp;
  let doc: Json;
  /** The same document with every $ref resolved (a copy; `doc` stays as served). */
  let resolved: Json;

  beforeAll(async () => {
    t = await createTestApp();
    const res = await request(t.http).get('/docs-json').expect(200);
    doc = res.body;
    const dereferenced = await swaggerParser('dereference', doc);
    if (!dereferenced.ok) throw new Error(dereferenced.error);
    resolved = dereferenced.api;
  });
  afterAll(() => t.close());

  it('serves the Swagger UI at /docs as HTML', async () => {
    const res = await request(t.http).get('/docs').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('swagger-ui');
  });

  it('serves the document at /docs-json as JSON', async () => {
    const res = await request(t.http).get('/docs-json').expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(res.body.info).toMatchObject({ title: expect.stringMatching(/\S/), version: expect.stringMatching(/\S/) });
  });

  it('is a valid OpenAPI 3 document (@apidevtools/swagger-parser)', async () => {
    const result = await swaggerParser('validate', doc);
    expect(result).toEqual({ ok: true, api: expect.objectContaining({ openapi: doc.openapi }) });
  });

  it('(the validator does reject an invalid document)', async () => {
    const broken = structuredClone(doc);
    broken.paths['/sessions'].post.responses = { 201: { content: { 'application/json': { schema: { $ref: '#/components/schemas/Nope' } } } } };
    expect(await swaggerParser('validate', broken)).toEqual({ ok: false, error: expect.any(String) });
    const withoutInfo = structuredClone(doc);
    delete withoutInfo.info;
    expect(await swaggerParser('validate', withoutInfo)).toEqual({ ok: false, error: expect.any(String) });
  });

  it('declares the bearer security scheme (opaque tokens, not JWTs) and uses it on the endpoints that take a token', () => {
    const schemes: Json = doc.components?.securitySchemes ?? {};
    const bearer = Object.entries(schemes).filter(([, s]) => s.type === 'http' && String(s.scheme).toLowerCase() === 'bearer');
    expect(bearer).toHaveLength(1);
    const [name, scheme] = bearer[0];
    // The tokens are 43 random base64url characters, not JWTs: the document must not say otherwise.
    expect(scheme.bearerFormat ?? '').not.toMatch(/jwt/i);
    expect(scheme.description).toMatch(/\S/);
    for (const route of [
      'POST /sessions',
      'GET /sessions/current',
      'GET /sessions',
      'PATCH /sessions/{uuid}',
      'DELETE /sessions/{uuid}',
      'POST /sessions/{uuid}/otp',
    ]) {
      expect({ route, security: operation(doc, route).security }).toEqual({ route, security: expect.arrayContaining([{ [name]: [] }]) });
    }
    // Only POST /sessions also works without a token (a new login): `{}` is OpenAPI's "none needed".
    expect(operation(doc, 'POST /sessions').security).toEqual(expect.arrayContaining([{}, { [name]: [] }]));
    for (const route of ['GET /sessions/current', 'GET /sessions', 'PATCH /sessions/{uuid}', 'DELETE /sessions/{uuid}', 'POST /sessions/{uuid}/otp']) {
      expect({ route, security: operation(doc, route).security }).toEqual({ route, security: [{ [name]: [] }] });
    }
  });

  it('describes every route the app serves (and no route it does not serve)', () => {
    const served = servedRoutes(t);
    // The enumeration itself works: the endpoints of SPEC.md are among the routes found.
    expect(served).toEqual(
      expect.arrayContaining([
        'POST /sessions',
        'PATCH /sessions/{uuid}',
        'GET /sessions/current',
        'GET /sessions',
        'DELETE /sessions/{uuid}',
        'POST /sessions/{uuid}/otp',
        'GET /health/live',
        'GET /health/ready',
        'GET /metrics',
      ]),
    );
    expect(documentedRoutes(doc)).toEqual(served);
  });

  it('documents, for each operation, a summary, a success response and error responses with the ApiErrorDto body', () => {
    for (const route of documentedRoutes(doc)) {
      const op = operation(doc, route);
      const statuses = Object.keys(op.responses);
      expect({ route, summary: op.summary }).toEqual({ route, summary: expect.stringMatching(/\S/) });
      expect({ route, success: statuses.some((s) => /^2\d\d$/.test(s)) }).toEqual({ route, success: true });
      for (const status of statuses) {
        const response = op.responses[status];
        expect({ route, status, description: typeof response.description }).toEqual({ route, status, description: 'string' });
        if (Number(status) >= 400) {
          // An error response says which `code`s it carries.
          expect({ route, status, description: response.description }).toEqual({ route, status, description: expect.stringMatching(/`[a-z_]+`/) });
          expect({ route, status, content: response.content }).toEqual({
            route,
            status,
            content: { 'application/json': { schema: { $ref: ERROR_REF }, examples: expect.any(Object) } },
          });
        }
        if (status === '429') {
          expect({ route, headers: Object.keys(response.headers ?? {}) }).toEqual({ route, headers: ['Retry-After'] });
        }
      }
    }
  });

  it.each([
    ['POST /sessions', ['200', '201', '400', '413', '415', '429']],
    ['PATCH /sessions/{uuid}', ['200', '400', '401', '404', '413', '415']],
    ['GET /sessions/current', ['200', '401']],
    ['GET /sessions', ['200', '401']],
    ['DELETE /sessions/{uuid}', ['204', '400', '401', '404']],
    ['POST /sessions/{uuid}/otp', ['202', '400', '401', '404', '409', '429']],
  ])('documents every status %s answers: %j', (route, statuses) => {
    expect(Object.keys(operation(doc, route).responses)).toEqual(expect.arrayContaining(statuses));
  });

  it('documents the request bodies, the mode query parameter and the {uuid} path parameter', () => {
    const start = operation(doc, 'POST /sessions');
    expect(start.requestBody).toEqual({
      required: true,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/CreateSessionDto' } } },
    });
    expect(start.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'mode', in: 'query', required: true, schema: expect.objectContaining({ enum: ['email'] }) })]),
    );
    expect(operation(doc, 'PATCH /sessions/{uuid}').requestBody).toEqual({
      required: true,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ConfirmSessionDto' } } },
    });
    for (const route of documentedRoutes(doc).filter((r) => r.includes('{uuid}'))) {
      expect({ route, parameters: operation(doc, route).parameters }).toEqual({
        route,
        parameters: expect.arrayContaining([
          expect.objectContaining({
            name: 'uuid',
            in: 'path',
            required: true,
            description: expect.stringContaining('ses-'),
            schema: expect.objectContaining({ type: 'string', pattern: expect.any(String), example: expect.stringMatching(/^ses-[0-9a-f-]{36}$/) }),
          }),
        ]),
      });
    }

    const create = resolved.components.schemas.CreateSessionDto;
    expect(create.required).toEqual(['user', 'device']);
    expect(create.properties.user.required).toEqual(['email']);
    expect(create.properties.user.properties.email).toMatchObject({ type: 'string', maxLength: 254, example: expect.any(String) });
    expect(create.properties.device.required).toEqual(['type']);
    expect(create.properties.device.properties.type).toMatchObject({ enum: ['mobi', 'othr'], example: expect.any(String) });
    expect(create.properties.device.properties.vendor_uuid).toMatchObject({ type: 'string', example: expect.any(String), pattern: expect.any(String) });
    // Unknown members are refused (400 validation_failed), so the request bodies say they are closed;
    // the responses stay open for members added later.
    expect(create.additionalProperties).toBe(false);
    expect(create.properties.user.additionalProperties).toBe(false);
    expect(create.properties.device.additionalProperties).toBe(false);
    expect(resolved.components.schemas.SessionResponseDto.additionalProperties).toBeUndefined();
    expect(resolved.components.schemas.ConfirmSessionDto).toMatchObject({
      additionalProperties: false,
      required: ['otp_code'],
      properties: { otp_code: { type: 'string', pattern: '^[0-9]{6}$', example: expect.stringMatching(/^\d{6}$/) } },
    });
  });

  it('lists its tags in reading order: sessions first, then health and metrics, each with a description', () => {
    expect(doc.tags.map((tag: Json) => tag.name)).toEqual(['sessions', 'health', 'metrics']);
    for (const tag of doc.tags) expect({ tag: tag.name, description: tag.description }).toEqual({ tag: tag.name, description: expect.stringMatching(/\S/) });
    const used = new Set(documentedRoutes(doc).flatMap((route) => operation(doc, route).tags ?? []));
    expect([...used].sort()).toEqual(['health', 'metrics', 'sessions']);
  });

  it('gives every error response examples of its own status, one per code its description names (not one 400 example for all)', () => {
    const seen = new Map<string, Set<string>>();
    for (const route of documentedRoutes(doc)) {
      for (const [status, response] of Object.entries<Json>(operation(doc, route).responses)) {
        if (Number(status) < 400) continue;
        const examples: Json = response.content['application/json'].examples;
        const codes = [...String(response.description).matchAll(/`([a-z_]+)`/g)]
          .map((m) => m[1])
          .filter((word) => !['fields', 'attempts_remaining', 'retry_after', 'details'].includes(word));
        expect({ route, status, codes: codes.length > 0 }).toEqual({ route, status, codes: true });
        const values = Object.values(examples).map((example: Json) => example.value);
        expect({ route, status, exampleCodes: [...new Set(values.map((v) => v.code))].sort() }).toEqual({ route, status, exampleCodes: [...new Set(codes)].sort() });
        for (const value of values) {
          expect({ route, status, value }).toEqual({
            route,
            status,
            value: expect.objectContaining({ statusCode: Number(status), error: expect.any(String), code: expect.any(String), message: expect.stringMatching(/\S/) }),
          });
          expect({ route, status, problems: schemaProblems(resolved.components.schemas.ApiErrorDto, value) }).toEqual({ route, status, problems: [] });
          if (!seen.has(status)) seen.set(status, new Set());
          seen.get(status)!.add(value.code);
        }
      }
    }
    expect(Object.fromEntries([...seen].map(([status, codes]) => [status, [...codes].sort()]))).toEqual({
      400: ['malformed_json', 'otp_attempts_exceeded', 'otp_expired', 'otp_invalid', 'session_expired', 'session_revoked', 'unsupported_mode', 'validation_failed'],
      401: ['unauthorized'],
      404: ['session_not_found'],
      409: ['session_not_pending'],
      413: ['payload_too_large'],
      415: ['unsupported_media_type'],
      429: ['rate_limited'],
      503: ['database_unavailable', 'shutting_down'],
    });
    // The example of a malformed session id names the path parameter.
    const idExample = operation(doc, 'DELETE /sessions/{uuid}').responses['400'].content['application/json'].examples;
    expect(Object.values<Json>(idExample).map((e) => e.value)).toEqual([
      expect.objectContaining({ code: 'validation_failed', fields: ['uuid'] }),
      expect.objectContaining({ code: 'malformed_json' }),
    ]);
    // PATCH's validation example is about its own body, not POST's.
    const patchExample = operation(doc, 'PATCH /sessions/{uuid}').responses['400'].content['application/json'].examples.validation_failed.value;
    expect(patchExample).toMatchObject({ code: 'validation_failed', fields: ['otp_code'] });
  });

  it('shows a new login as pending: confirmed_at and expires_at null; a confirmation with both set', () => {
    const created = operation(doc, 'POST /sessions').responses['201'].content['application/json'].example;
    expect(created).toMatchObject({ status: 'pending', confirmed_at: null, expires_at: null, otp_expires_at: expect.any(String) });
    expect(schemaProblems(resolved.components.schemas.SessionResponseDto, created)).toEqual([]);
    const reused = operation(doc, 'POST /sessions').responses['200'].content['application/json'].examples;
    expect(reused.pending.value).toMatchObject({ status: 'pending', confirmed_at: null, expires_at: null });
    expect(reused.confirmed.value).toMatchObject({ status: 'confirmed', confirmed_at: expect.any(String) });
    const confirmed = operation(doc, 'PATCH /sessions/{uuid}').responses['200'].content['application/json'].example;
    expect(confirmed).toMatchObject({ status: 'confirmed', confirmed_at: expect.any(String), expires_at: expect.any(String) });
    expect(schemaProblems(resolved.components.schemas.SessionResponseDto, confirmed)).toEqual([]);
  });

  it('documents error examples that are what the endpoints really answer', async () => {
    /** The documented example of `code` in `route`'s `status` answer. */
    const documented = (route: string, status: number, key: string): Json =>
      operation(doc, route).responses[String(status)].content['application/json'].examples[key].value;
    const json = { 'Content-Type': 'application/json' };
    const session = await createPendingSession(t, othr(uniqueEmail('docs-errors')));
    const answers: [string, number, string, request.Test][] = [
      ['POST /sessions', 400, 'unsupported_mode', request(t.http).post('/sessions?mode=sms').send(othr(uniqueEmail()))],
      ['POST /sessions', 400, 'malformed_json', request(t.http).post('/sessions?mode=email').set(json).send('{"user":')],
      ['POST /sessions', 400, 'validation_failed', request(t.http).post('/sessions?mode=email').send(othr('not-an-email'))],
      ['POST /sessions', 413, 'payload_too_large', request(t.http).post('/sessions?mode=email').set(json).send(JSON.stringify({ pad: 'x'.repeat(17_000) }))],
      ['POST /sessions', 415, 'unsupported_media_type', request(t.http).post('/sessions?mode=email').set('Content-Type', 'text/plain').send('hi')],
      ['GET /sessions/current', 401, 'unauthorized', request(t.http).get('/sessions/current')],
      ['PATCH /sessions/{uuid}', 404, 'session_not_found', request(t.http).patch('/sessions/ses-00000000-0000-4000-8000-000000000000').set('Authorization', `Bearer ${session.token}`).send({ otp_code: '123456' })],
      ['DELETE /sessions/{uuid}', 400, 'validation_failed_session_id', request(t.http).delete('/sessions/ses-123').set('Authorization', `Bearer ${session.token}`)],
      ['PATCH /sessions/{uuid}', 400, 'validation_failed', request(t.http).patch(`/sessions/${session.uuid}`).set('Authorization', `Bearer ${session.token}`).send({ otp_code: '12345' })],
      ['PATCH /sessions/{uuid}', 400, 'malformed_json', request(t.http).patch(`/sessions/${session.uuid}`).set('Authorization', `Bearer ${session.token}`).set(json).send('{"otp_code":')],
      ['POST /sessions/{uuid}/otp', 400, 'malformed_json', request(t.http).post(`/sessions/${session.uuid}/otp`).set('Authorization', `Bearer ${session.token}`).set(json).send('[1,')],
      ['PATCH /sessions/{uuid}', 400, 'otp_invalid', confirm(t, session.uuid, session.token, session.code === '000000' ? '111111' : '000000')],
    ];
    for (const [route, status, key, call] of answers) {
      const res = await call;
      const example = documented(route, status, key);
      expect({ route, key, status: res.status, keys: Object.keys(res.body).sort(), code: res.body.code }).toEqual({
        route,
        key,
        status,
        keys: Object.keys(example).sort(),
        code: example.code,
      });
      if (!['validation_failed', 'otp_invalid'].includes(key) || route === 'PATCH /sessions/{uuid}') {
        expect({ route, key, message: res.body.message, fields: res.body.fields }).toEqual({ route, key, message: example.message, fields: example.fields });
      }
    }
    // Every 401 documents the WWW-Authenticate header the service sends with it.
    for (const route of documentedRoutes(doc)) {
      const unauthorized = operation(doc, route).responses?.['401'];
      if (unauthorized) expect({ route, header: Object.keys(unauthorized.headers ?? {}) }).toEqual({ route, header: ['WWW-Authenticate'] });
    }
  });

  it('documents the error body with its required fields and examples', () => {
    const error = resolved.components.schemas.ApiErrorDto;
    expect(error.required).toEqual(['statusCode', 'error', 'code', 'message']);
    for (const [name, property] of Object.entries<Json>(error.properties)) {
      expect({ name, example: property.example }).toEqual({ name, example: expect.anything() });
    }
    expect(Object.keys(error.properties)).toEqual(
      expect.arrayContaining(['statusCode', 'error', 'code', 'message', 'fields', 'attempts_remaining', 'retry_after']),
    );
  });

  it('gives every string and number property of the session schemas an example', () => {
    for (const name of ['SessionResponseDto', 'SessionInfoDto', 'OtpResentDto', 'SessionUserDto', 'SessionDeviceDto']) {
      const schema = resolved.components.schemas[name];
      expect(schema).toBeDefined();
      for (const [property, definition] of Object.entries<Json>(schema.properties)) {
        if (definition.type === 'string' || definition.type === 'number') {
          expect({ name, property, example: definition.example }).toEqual({ name, property, example: expect.anything() });
        }
      }
    }
  });

  /** The documented schema of `route`'s `status` answer (dereferenced). */
  const responseSchema = (route: string, status: number): Json => {
    const [method, path] = route.split(' ');
    const schema = resolved.paths[path][method.toLowerCase()].responses[String(status)]?.content?.['application/json']?.schema;
    if (!schema) throw new Error(`${route} documents no JSON body for ${status}`);
    return schema;
  };
  const expectMatches = (route: string, status: number, body: unknown) =>
    expect({ route, status, problems: schemaProblems(responseSchema(route, status), body) }).toEqual({ route, status, problems: [] });

  it('describes the bodies the endpoints really answer, success and error alike', async () => {
    const email = uniqueEmail('docs');
    const started = await createPendingSession(t, mobi(email));
    expectMatches('POST /sessions', 201, started.body);
    const reused = await request(t.http).post('/sessions?mode=email').set('Authorization', `Bearer ${started.token}`).send(mobi(email)).expect(200);
    expectMatches('POST /sessions', 200, reused.body);
    const invalid = await request(t.http).post('/sessions?mode=email').send({ user: {}, device: { type: 'x' } }).expect(400);
    expectMatches('POST /sessions', 400, invalid.body);
    const cooldown = await request(t.http).post(`/sessions/${started.uuid}/otp`).set('Authorization', `Bearer ${started.token}`).expect(429);
    expectMatches('POST /sessions/{uuid}/otp', 429, cooldown.body);
    t.clock.advance(61);
    const resent = await request(t.http).post(`/sessions/${started.uuid}/otp`).set('Authorization', `Bearer ${started.token}`).expect(202);
    expectMatches('POST /sessions/{uuid}/otp', 202, resent.body);
    await nextCode(t, email, 1); // the resent mail is out before the next login's mail is awaited
    const wrong = await confirm(t, started.uuid, started.token, '12345x').expect(400);
    expectMatches('PATCH /sessions/{uuid}', 400, wrong.body);

    const session = await createConfirmedSession(t, othr(email));
    expectMatches('PATCH /sessions/{uuid}', 200, session.body);
    const current = await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${session.token}`).expect(200);
    expectMatches('GET /sessions/current', 200, current.body);
    const list = await request(t.http).get('/sessions').set('Authorization', `Bearer ${session.token}`).expect(200);
    expect(list.body.sessions).toHaveLength(2);
    expectMatches('GET /sessions', 200, list.body);
    const notPending = await request(t.http).post(`/sessions/${session.uuid}/otp`).set('Authorization', `Bearer ${session.token}`).expect(409);
    expectMatches('POST /sessions/{uuid}/otp', 409, notPending.body);
    const unauthorized = await request(t.http).get('/sessions/current').expect(401);
    expectMatches('GET /sessions/current', 401, unauthorized.body);
    const notFound = await request(t.http)
      .delete('/sessions/ses-00000000-0000-4000-8000-000000000000')
      .set('Authorization', `Bearer ${session.token}`)
      .expect(404);
    expectMatches('DELETE /sessions/{uuid}', 404, notFound.body);
    await request(t.http).delete(`/sessions/${session.uuid}`).set('Authorization', `Bearer ${session.token}`).expect(204);
    const live = await request(t.http).get('/health/live').expect(200);
    expect(live.body).toEqual({ status: 'ok' });
    const metrics = await request(t.http).get('/metrics').expect(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(Object.keys(operation(doc, 'GET /metrics').responses['200'].content ?? {})).toEqual(['text/plain']);
  });
});
