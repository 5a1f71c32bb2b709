import { createTestApp, type TestApp } from './support/test-app.js';
import { confirm, createPendingSession, mobi, othr, startLogin } from './support/factories.js';

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe('login flow: POST /sessions then PATCH /sessions/{uuid}', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it('starts a login for a new user and device, emails the code, and confirms with it', async () => {
    const started = await startLogin(t, mobi(' Joe@Example.COM ', '0F8FAD5B-D9CB-469F-A165-70867728950E')).expect(201);
    expect(Object.keys(started.body)).toEqual([
      'uuid', 'created_at', 'token', 'is_new_user', 'is_new_device', 'user', 'device', 'status',
      'otp_expires_at', 'confirmed_at', 'expires_at',
    ]);
    expect(started.body).toMatchObject({
      is_new_user: true,
      is_new_device: true,
      user: { email: 'joe@example.com' },
      device: { type: 'mobi', vendor_uuid: '0f8fad5b-d9cb-469f-a165-70867728950e' },
      status: 'pending',
      confirmed_at: null,
      expires_at: null,
    });
    expect(started.body.uuid).toMatch(/^ses-[0-9a-f-]{36}$/);
    expect(started.body.user.uuid).toMatch(/^usr-[0-9a-f-]{36}$/);
    expect(started.body.device.uuid).toMatch(/^dev-[0-9a-f-]{36}$/);
    expect(started.body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(started.body.created_at).toMatch(ISO_UTC);
    expect(new Date(started.body.otp_expires_at).getTime() - new Date(started.body.created_at).getTime()).toBe(300_000);

    const code = await t.smtp.codeFor('joe@example.com');
    const confirmed = await confirm(t, started.body.uuid, started.body.token, code).expect(200);
    expect(confirmed.body).toMatchObject({
      uuid: started.body.uuid,
      token: started.body.token,
      is_new_user: false,
      is_new_device: false,
      status: 'confirmed',
      expires_at: null,
    });
    expect(confirmed.body.confirmed_at).toMatch(ISO_UTC);
  });

  it('gives othr sessions an expiry of OTHR_SESSION_TTL (2 h) after confirmation', async () => {
    const pending = await createPendingSession(t, othr('ann@example.com'));
    const res = await confirm(t, pending.uuid, pending.token, pending.code).expect(200);
    expect(res.body.device.vendor_uuid).toBeNull();
    expect(new Date(res.body.expires_at).getTime() - new Date(res.body.confirmed_at).getTime()).toBe(7_200_000);
  });
});
