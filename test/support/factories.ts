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

export const othr = (email: string): LoginBody => ({ user: { email }, device: { type: 'othr' } });

/** POST /sessions?mode=email, optionally with a bearer token. */
export function startLogin(t: TestApp, body: unknown, token?: string): request.Test {
  const call = request(t.http).post('/sessions?mode=email').send(body as object);
  return token ? call.set('Authorization', `Bearer ${token}`) : call;
}

/** PATCH /sessions/{uuid} with the session's token. */
export function confirm(t: TestApp, uuid: string, token: string, otpCode: unknown): request.Test {
  return request(t.http).patch(`/sessions/${uuid}`).set('Authorization', `Bearer ${token}`).send({ otp_code: otpCode });
}

/** A new pending session and the code mailed for it. */
export async function createPendingSession(t: TestApp, body: LoginBody) {
  const res = await startLogin(t, body).expect(201);
  const code = await t.smtp.codeFor(body.user.email.trim().toLowerCase());
  return { uuid: res.body.uuid as string, token: res.body.token as string, code, body: res.body };
}

/** A confirmed session. */
export async function createConfirmedSession(t: TestApp, body: LoginBody) {
  const pending = await createPendingSession(t, body);
  const res = await confirm(t, pending.uuid, pending.token, pending.code).expect(200);
  return { ...pending, body: res.body };
}

/** The code for a session that is certainly wrong. */
export const wrongCode = (code: string): string => (code === '000000' ? '111111' : '000000');
