import request from 'supertest';
import type { TestApp } from './test-app.js';

export interface LoginBody {
  user: { email: string };
  device: { type: 'mobi' | 'othr'; vendor_uuid?: string };
}

export const mobi = (email: string, vendorUuid = '0f8fad5b-d9cb-469f-a165-70867728950e'): LoginBody => ({
  user: { email },
  device: { type: 'mobi', vendor_uuid: vendorUuid },
});

/** An `othr` login; with `vendorUuid`, that id is part of the device identity. */
export const othr = (email: string, vendorUuid?: string): LoginBody => ({
  user: { email },
  device: vendorUuid === undefined ? { type: 'othr' } : { type: 'othr', vendor_uuid: vendorUuid },
});

/** POST /sessions?mode=email, optionally with a bearer token. */
export function startLogin(t: TestApp, body: unknown, token?: string): request.Test {
  const call = request(t.http).post('/sessions?mode=email').send(body as object);
  return token ? call.set('Authorization', `Bearer ${token}`) : call;
}

/** PATCH /sessions/{uuid} with the session's token. */
export function confirm(t: TestApp, uuid: string, token: string, otpCode: unknown): request.Test {
  return request(t.http).patch(`/sessions/${uuid}`).set('Authorization', `Bearer ${token}`).send({ otp_code: otpCode });
}

/**
 * The code of the next mail to `to` after the first `seenBefore` ones (take `t.smtp.countTo(to)`
 * before the request that sends it), waiting up to 5 s. Unlike `codeFor`, never answers with the
 * code of an earlier mail to the same address while the new one is still in the queue.
 */
export async function nextCode(t: TestApp, to: string, seenBefore: number): Promise<string> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const mail = t.smtp.messages.filter((m) => m.to === to)[seenBefore];
    if (mail?.code) return mail.code;
    if (Date.now() > deadline) throw new Error(`No mail number ${seenBefore + 1} with a code for ${to}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A new pending session and the code mailed for it (waits for this session's own mail, not an
 * earlier one to the same address). `headers` are sent with the POST (e.g. `User-Agent`).
 */
export async function createPendingSession(t: TestApp, body: LoginBody, headers: Record<string, string> = {}) {
  const to = body.user.email.trim().toLowerCase();
  const seenBefore = t.smtp.countTo(to);
  const res = await startLogin(t, body).set(headers).expect(201);
  const code = await nextCode(t, to, seenBefore);
  return { uuid: res.body.uuid as string, token: res.body.token as string, code, body: res.body };
}

/** A confirmed session. */
export async function createConfirmedSession(t: TestApp, body: LoginBody, headers: Record<string, string> = {}) {
  const pending = await createPendingSession(t, body, headers);
  const res = await confirm(t, pending.uuid, pending.token, pending.code).expect(200);
  return { ...pending, body: res.body };
}

/** The code for a session that is certainly wrong. */
export const wrongCode = (code: string): string => (code === '000000' ? '111111' : '000000');

let emailCounter = 0;

/** A new email address on every call, so that tests never share a user, device or send limit. */
export function uniqueEmail(tag = 'user'): string {
  emailCounter += 1;
  return `${tag}-${process.pid}-${emailCounter}-${Date.now().toString(36)}@example.com`;
}

/**
 * PATCH /sessions/{uuid} with full control: `authorization` is the raw header (omitted when
 * undefined), `body` is sent as JSON (a string is sent verbatim as `application/json`; omitted when
 * undefined).
 */
export function patchSession(
  t: TestApp,
  uuid: string,
  options: { authorization?: string; body?: unknown } = {},
): request.Test {
  let call = request(t.http).patch(`/sessions/${uuid}`);
  if (options.authorization !== undefined) call = call.set('Authorization', options.authorization);
  if (typeof options.body === 'string') call = call.set('Content-Type', 'application/json').send(options.body);
  else if (options.body !== undefined) call = call.send(options.body as object);
  return call;
}

/** The sessions row of a public `ses-<uuid>` id, every column (Dates and Buffers as pg returns them). */
export async function sessionRow(t: TestApp, uuid: string): Promise<Record<string, unknown>> {
  const rows = await t.db.query(`SELECT * FROM sessions WHERE id = $1`, [uuid.replace(/^ses-/, '')]);
  if (rows.length !== 1) throw new Error(`No sessions row for ${uuid}`);
  return rows[0];
}

/** Rows in the tables a request could change, to show that a refused request changed nothing. */
export async function countRows(t: TestApp): Promise<Record<'users' | 'devices' | 'sessions' | 'otp_sends', number>> {
  const [row] = await t.db.query<Record<'users' | 'devices' | 'sessions' | 'otp_sends', number>>(
    `SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM devices)::int AS devices,
            (SELECT count(*) FROM sessions)::int AS sessions, (SELECT count(*) FROM otp_sends)::int AS otp_sends`,
  );
  return row;
}

const REASON_PHRASES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/**
 * The exact JSON error body of SPEC "Errors": `statusCode`, `error`, `code`, a non-empty `message`,
 * and exactly the `extra` fields given (e.g. `fields`, `retry_after`), nothing else.
 */
export function errorBody(status: number, code: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    statusCode: status,
    error: REASON_PHRASES[status] ?? expect.any(String),
    code,
    message: expect.stringMatching(/\S/),
    ...extra,
  };
}

/**
 * Waits (up to 10 s) until every queued OTP mail is settled (sent, or dropped after a rejection) and
 * the SMTP server has answered them all: from then on `t.smtp` counts are final. Call it before
 * asserting that nothing was mailed, and before moving the clock past a queued code's expiry.
 */
export async function mailSettled(t: TestApp): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    // mail_outbox holds a mail until the worker has sent it or given it up (OtpMailQueue).
    const [{ n }] = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM mail_outbox`);
    if (n === 0 && t.smtp.pending === 0) return;
    if (Date.now() > deadline) throw new Error(`${n} OTP mail(s) still unsettled in mail_outbox after 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * `schema.table.column` of every value in every table of the database (ours and whatever a library
 * keeps, read generically through information_schema, never by name) that contains one of `parts`.
 */
export async function valuesHolding(t: TestApp, parts: string[]): Promise<string[]> {
  const tables = await t.db.query<{ schema: string; name: string }>(
    `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
  );
  const found: string[] = [];
  for (const { schema, name } of tables) {
    const rows = await t.db.query<{ col: string }>(
      `SELECT DISTINCT e.key AS col FROM "${schema}"."${name}" x, jsonb_each_text(to_jsonb(x)) e
        WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) p WHERE strpos(e.value, p) > 0)`,
      [parts],
    );
    found.push(...rows.map((r) => `${schema}.${name}.${r.col}`));
  }
  return found;
}
