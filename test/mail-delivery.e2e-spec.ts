import request from 'supertest';
import { createTestApp, type TestApp } from './support/test-app.js';
import { confirm, othr, startLogin } from './support/factories.js';
import { SmtpSink } from './support/smtp-sink.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(200);
  }
}

describe('durable OTP mail delivery (pg-boss queue in PostgreSQL)', () => {
  let t: TestApp;
  let n = 0;
  const email = () => `mail${++n}@example.com`;
  const queuedJobs = async () =>
    Number((await t.db.query<{ c: string }>(`SELECT count(*) AS c FROM pgboss.job WHERE name = 'otp-mail'`))[0].c);

  beforeEach(async () => {
    t = await createTestApp({ OTP_RESEND_COOLDOWN: '0' });
  });
  afterEach(() => t.close());

  it('sends a plain-text and HTML mail from MAIL_FROM whose code confirms the session, then deletes the job', async () => {
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    const code = await t.smtp.codeFor(to);
    const mail = t.smtp.messages.find((m) => m.to === to)!;
    expect(mail.from).toBe('"Login" <login@test.local>');
    expect(mail.subject).toContain(code);
    expect(mail.text).toContain(`Your login code is ${code}`);
    expect(mail.text).toContain('valid for 5 minutes');
    expect(mail.html).toContain(code);
    expect(mail.html).toContain('valid for 5 minutes');
    expect(mail.html).not.toMatch(/<a\b|<img\b|https?:\/\//i);

    await until(queuedJobs, (c) => c === 0, 5_000);
    expect(await queuedJobs()).toBe(0);
    await confirm(t, started.body.uuid, started.body.token, code).expect(200);
  });

  it('keeps no form of the code in the database after delivery but the session\'s HMAC', async () => {
    const to = email();
    await startLogin(t, othr(to)).expect(201);
    const code = await t.smtp.codeFor(to);
    await until(queuedJobs, (c) => c === 0, 5_000);
    const dump = await t.db.query<{ row: string }>(
      `SELECT row_to_json(x)::text AS row FROM (
         SELECT to_jsonb(s) AS r FROM sessions s UNION ALL
         SELECT to_jsonb(o) FROM otp_sends o UNION ALL
         SELECT to_jsonb(j) FROM pgboss.job j UNION ALL
         SELECT to_jsonb(a) FROM pgboss.archive a) x`,
    );
    expect(dump.length).toBeGreaterThan(0);
    expect(dump.filter(({ row }) => row.includes(code))).toEqual([]);
    expect(await queuedJobs()).toBe(0);
    expect(Number((await t.db.query<{ c: string }>(`SELECT count(*) AS c FROM pgboss.archive`))[0].c)).toBe(0);
  });

  it('answers 201 while the SMTP server is down and delivers the mail once it is back', async () => {
    const port = Number(new URL(t.smtp.url).port);
    await t.smtp.stop();
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    await sleep(1_500);
    expect(await queuedJobs()).toBe(1);

    const revived = await SmtpSink.start(port);
    try {
      const code = await until(
        async () => revived.messages.find((m) => m.to === to)?.code ?? null,
        (c) => c !== null,
        20_000,
      );
      expect(code).toMatch(/^\d{6}$/);
      await confirm(t, started.body.uuid, started.body.token, code).expect(200);
      expect(revived.countTo(to)).toBe(1);
      await until(queuedJobs, (c) => c === 0, 5_000);
      expect(await queuedJobs()).toBe(0);
    } finally {
      await revived.stop();
    }
  }, 40_000);

  it('queues the job as pg-boss would: the otp-mail queue\'s retry settings, created state, sealed code', async () => {
    await t.smtp.stop();
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    const jobs = await t.db.query<Record<string, unknown>>(
      `SELECT state, retry_limit, retry_delay, retry_backoff, expire_in::text AS expire_in, policy,
              data->>'sessionId' AS session_id, data->>'to' AS "to", data ? 'sealedCode' AS sealed,
              keep_until > now() AS kept
         FROM pgboss.job WHERE name = 'otp-mail'`,
    );
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({
      retry_limit: 16,
      retry_delay: 1,
      retry_backoff: true,
      expire_in: '00:01:00',
      policy: 'standard',
      session_id: started.body.uuid.replace(/^ses-/, ''),
      to,
      sealed: true,
      kept: true,
    });
    // Created; the worker may already hold it ('active') while its SMTP attempt fails, or have
    // scheduled the retry.
    expect(['created', 'active', 'retry']).toContain(jobs[0].state);
  });

  it('refuses to queue a mail for a queue that does not exist instead of losing it', async () => {
    await expect(t.db.query(`SELECT enqueue_otp_mail('no-such-queue', '{}'::jsonb)`)).rejects.toThrow(
      'mail queue "no-such-queue" does not exist',
    );
  });

  it('attempts a permanently rejecting server (5xx) once and drops the job', async () => {
    t.smtp.refuse = true;
    await startLogin(t, othr(email())).expect(201);
    await until(queuedJobs, (c) => c === 0, 5_000);
    await sleep(3_000); // a retry would have come by now
    expect(t.smtp.refused).toBe(1);
    expect(await queuedJobs()).toBe(0);
  });

  it('gives up once the code has expired, without sending it', async () => {
    const port = Number(new URL(t.smtp.url).port);
    await t.smtp.stop();
    const to = email();
    await startLogin(t, othr(to)).expect(201);
    await sleep(1_000);
    t.clock.advance(301);
    const left = await until(queuedJobs, (c) => c === 0, 15_000);
    expect(left).toBe(0);
    const revived = await SmtpSink.start(port);
    try {
      await sleep(1_000);
      expect(revived.countTo(to)).toBe(0);
    } finally {
      await revived.stop();
    }
  }, 30_000);

  it('enqueues nothing for a request that is refused (the job shares the session\'s transaction)', async () => {
    const app = await createTestApp({ OTP_MAX_SENDS_PER_HOUR: '1' });
    try {
      const to = email();
      await startLogin(app, othr(to)).expect(201);
      await app.smtp.codeFor(to);
      await startLogin(app, { user: { email: to }, device: { type: 'othr', vendor_uuid: '6ba7b810-9dad-11d1-80b4-00c04fd430c8' } }).expect(429);
      const jobs = await app.db.query<{ c: string }>(`SELECT count(*) AS c FROM pgboss.job WHERE name = 'otp-mail'`);
      expect(Number(jobs[0].c)).toBe(0);
      expect(app.smtp.countTo(to)).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('sends a resent code, and only the new code works', async () => {
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    const first = await t.smtp.codeFor(to);
    const resent = await request(t.http)
      .post(`/sessions/${started.body.uuid}/otp`)
      .set('Authorization', `Bearer ${started.body.token}`)
      .expect(202);
    expect(resent.body.uuid).toBe(started.body.uuid);
    const second = await until(
      async () => (t.smtp.countTo(to) === 2 ? t.smtp.codeFor(to) : null),
      (c) => c !== null,
      5_000,
    );
    if (second === first) return; // one chance in a million: the same code was drawn twice
    await confirm(t, started.body.uuid, started.body.token, first).expect(400);
    await confirm(t, started.body.uuid, started.body.token, second).expect(200);
  });
});
