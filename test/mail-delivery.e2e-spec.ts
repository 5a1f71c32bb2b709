import request from 'supertest';
import { createTestApp, type TestApp } from './support/test-app.js';
import { randomUUID } from 'node:crypto';
import { makeWorkerUtils } from 'graphile-worker';
import { OTP_MAIL_TASK } from '../src/mail/otp-mail.job.js';
import { OtpMailRelay } from '../src/mail/otp-mail.relay.js';
import { SessionSweepService } from '../src/sessions/session-sweep.service.js';
import { confirm, othr, startLogin, valuesHolding } from './support/factories.js';
import { metricValue } from './support/observability.js';
import { SmtpSink } from './support/smtp-sink.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The code of the first mail `sink` received for `to`, waiting up to 20 s (null if none came). */
function codeReceived(sink: SmtpSink, to: string): Promise<string | null> {
  return until(async () => sink.messages.find((m) => m.to === to)?.code ?? null, (c) => c !== null, 20_000);
}

/**
 * Stops the app's SMTP sink (connections refused on its port). `whenBack(check)` starts a new sink
 * on that port, runs `check` with it and stops it, also when `check` fails.
 */
async function smtpDown(t: TestApp): Promise<{ whenBack: (check: (sink: SmtpSink) => Promise<void>) => Promise<void> }> {
  const port = Number(new URL(t.smtp.url).port);
  await t.smtp.stop();
  return {
    async whenBack(check) {
      const revived = await SmtpSink.start(port);
      try {
        await check(revived);
      } finally {
        await revived.stop();
      }
    },
  };
}

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(200);
  }
}

describe('durable OTP mail delivery (mail_outbox, then graphile-worker, in PostgreSQL)', () => {
  let t: TestApp;
  let n = 0;
  const email = () => `mail${++n}@example.com`;
  /** Mails not settled yet: a mail_outbox row lives until its mail is sent or given up. */
  const queuedJobs = async () => Number((await t.db.query<{ c: string }>(`SELECT count(*) AS c FROM mail_outbox`))[0].c);

  beforeEach(async () => {
    t = await createTestApp({ OTP_RESEND_COOLDOWN: '0' });
  });
  afterEach(() => t.close());

  it('sends a plain-text and HTML mail from MAIL_FROM whose code confirms the session, then deletes the outbox row', async () => {
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    const code = await t.smtp.codeFor(to);
    const mail = t.smtp.messages.find((m) => m.to === to)!;
    expect(mail.from).toBe('"Login" <login@test.local>');
    expect(mail.subject).toBe('Your Session Management login code'); // never the code: lock screens show subjects
    expect(mail.text).toContain(`Your Session Management login code:\n\n    ${code}\n`);
    expect(mail.text).toContain('valid for 5\u00a0minutes');
    expect(mail.html).toContain(code);
    expect(mail.html).toContain('valid for 5\u00a0minutes');
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
         SELECT to_jsonb(m) FROM mail_outbox m) x`,
    );
    expect(dump.length).toBeGreaterThan(0);
    expect(dump.filter(({ row }) => row.includes(code))).toEqual([]);
    expect(await queuedJobs()).toBe(0);
    // Nor anywhere else in the database (whatever tables the job queue keeps): not the code, and
    // not the address the mail went to, outside the users table.
    const leftovers = async () => (await valuesHolding(t, [code, to])).filter((where) => where !== 'public.users.email');
    expect(await until(leftovers, (found) => found.length === 0, 5_000)).toEqual([]);
  });

  it('answers 201 while the SMTP server is down and delivers the mail once it is back', async () => {
    const smtp = await smtpDown(t);
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    await sleep(1_500);
    expect(await queuedJobs()).toBe(1);

    await smtp.whenBack(async (revived) => {
      const code = await codeReceived(revived, to);
      expect(code).toMatch(/^\d{6}$/);
      await confirm(t, started.body.uuid, started.body.token, code).expect(200);
      expect(revived.countTo(to)).toBe(1);
      await until(queuedJobs, (c) => c === 0, 5_000);
      expect(await queuedJobs()).toBe(0);
    });
  }, 40_000);

  it('queues the mail in the outbox in the login\'s statement: one row keyed by the session, the code sealed, then handed over', async () => {
    await t.smtp.stop();
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    const sessionId = started.body.uuid.replace(/^ses-/, '');
    const outbox = () =>
      t.db.query<Record<string, unknown>>(
        `SELECT m.session_id, m.revision, m.payload->>'to' AS "to", m.payload ? 'sealedCode' AS sealed,
                m.payload->>'validSeconds' AS valid_seconds, m.expires_at = s.otp_expires_at AS expires_with_code,
                m.handed_over_at IS NOT NULL AS handed_over, s.locale
           FROM mail_outbox m JOIN sessions s ON s.id = m.session_id`,
      );
    const rows = await outbox();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      session_id: sessionId,
      revision: 1,
      to,
      sealed: true,
      valid_seconds: '300',
      expires_with_code: true,
      locale: 'en',
    });
    // The relay hands it to graphile-worker at once (woken by the commit); the row stays until the
    // mail is settled.
    const handed = await until(outbox, (r) => r[0]?.handed_over === true, 5_000);
    expect(handed).toEqual([expect.objectContaining({ session_id: sessionId, handed_over: true })]);
  });

  it('hands waiting outbox rows to the job queue in batches (relay), and their mails are then delivered', async () => {
    const relay = t.app.get(OtpMailRelay);
    await relay.stop(); // this replica's relay moves nothing on its own now
    const smtp = await smtpDown(t);
    const emails = [email(), email(), email()];
    for (const to of emails) await startLogin(t, othr(to)).expect(201);
    const waiting = async () =>
      Number((await t.db.query<{ c: string }>(`SELECT count(*) AS c FROM mail_outbox WHERE handed_over_at IS NULL`))[0].c);
    expect(await waiting()).toBe(3);

    expect(await relay.relayBatch(2)).toEqual({ handed: 2, jobs: 1 });
    expect(await waiting()).toBe(1);
    expect(await relay.relayBatch(2)).toEqual({ handed: 1, jobs: 1 });
    expect(await relay.relayBatch(2)).toEqual({ handed: 0, jobs: 0 });
    expect(await waiting()).toBe(0);
    expect(await queuedJobs()).toBe(3); // handed over, not settled: the rows stay until sent

    await smtp.whenBack(async (revived) => {
      await until(async () => emails.filter((to) => revived.countTo(to) === 1).length, (n) => n === 3, 20_000);
      expect(emails.map((to) => revived.countTo(to))).toEqual([1, 1, 1]);
      expect(await until(queuedJobs, (c) => c === 0, 5_000)).toBe(0);
    });
  }, 40_000);

  it('sends the mails of one job together, and retries only the one the server deferred (graphile-worker batch job)', async () => {
    const relay = t.app.get(OtpMailRelay);
    await relay.stop();
    const [first, deferred, last] = [email(), email(), email()];
    for (const to of [first, deferred, last]) await startLogin(t, othr(to)).expect(201);
    t.smtp.deferOnce.add(deferred);
    expect(await relay.relayBatch()).toEqual({ handed: 3, jobs: 1 });

    await until(async () => [first, last].filter((to) => t.smtp.countTo(to) === 1).length, (n) => n === 2, 5_000);
    expect(t.smtp.countTo(deferred)).toBe(0);
    expect(t.smtp.deferred).toBe(1);
    // graphile-worker puts the job back with the deferred entry only, and retries it after its backoff.
    await until(async () => t.smtp.countTo(deferred), (n) => n === 1, 15_000);
    expect(await until(queuedJobs, (c) => c === 0, 5_000)).toBe(0);
    await sleep(500);
    expect([first, deferred, last].map((to) => t.smtp.countTo(to))).toEqual([1, 1, 1]);
  }, 40_000);

  it('sends a job queued by the version before batches (one mail per job) from its outbox row', async () => {
    const relay = t.app.get(OtpMailRelay);
    await relay.stop();
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    const sessionId = started.body.uuid.replace(/^ses-/, '');
    const [row] = await t.db.query<{ payload: object }>(`SELECT payload FROM mail_outbox WHERE session_id = $1`, [sessionId]);
    // That version's job: the outbox payload plus the session, revision and locale, keyed by session.
    const utils = await makeWorkerUtils({ connectionString: t.db.url });
    try {
      await utils.addJob(OTP_MAIL_TASK, { ...row.payload, sessionId, revision: 1, locale: 'en' }, { jobKey: `otp-mail:${sessionId}`, maxAttempts: 25 });
    } finally {
      await utils.release();
    }
    const code = await t.smtp.codeFor(to);
    expect(await until(queuedJobs, (c) => c === 0, 5_000)).toBe(0);
    expect(t.smtp.countTo(to)).toBe(1);
    await confirm(t, started.body.uuid, started.body.token, code).expect(200);
  });

  it('replaces a mail still queued when the code is resent: only the new code is mailed', async () => {
    const smtp = await smtpDown(t);
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    const sessionId = started.body.uuid.replace(/^ses-/, '');
    // Handed over to the job queue, its first attempts failing: still queued there.
    await until(
      async () => (await t.db.query<{ h: boolean }>(`SELECT handed_over_at IS NOT NULL AS h FROM mail_outbox`))[0]?.h,
      (h) => h === true,
      5_000,
    );
    await request(t.http)
      .post(`/sessions/${started.body.uuid}/otp`)
      .set('Authorization', `Bearer ${started.body.token}`)
      .expect(202);
    const rows = await t.db.query(`SELECT session_id, revision FROM mail_outbox`);
    expect(rows).toEqual([{ session_id: sessionId, revision: 2 }]);

    await smtp.whenBack(async (revived) => {
      const code = await codeReceived(revived, to);
      expect(await until(queuedJobs, (c) => c === 0, 5_000)).toBe(0);
      await sleep(1_000); // the replaced mail would have come by now
      expect(revived.countTo(to)).toBe(1);
      await confirm(t, started.body.uuid, started.body.token, code!).expect(200);
    });
  }, 40_000);

  it('leaves no outbox row and sends nothing for a login whose transaction rolled back', async () => {
    const to = email();
    const now = new Date(t.clock.now());
    const sessionId = randomUUID();
    await t.db.query(
      `DO $$ BEGIN
         PERFORM start_login(gen_random_uuid(), '${to}', gen_random_uuid(), 'othr', NULL, '${now.toISOString()}',
                             '${sessionId}', '\\x00'::bytea, '\\x00'::bytea, '${new Date(now.getTime() + 300_000).toISOString()}',
                             5::smallint, NULL, NULL, 'en', 0, 10, '{"to":"${to}"}'::jsonb);
         RAISE EXCEPTION 'roll back';
       EXCEPTION WHEN raise_exception THEN NULL;
       END $$`,
    );
    expect(await t.db.query(`SELECT count(*)::int AS n FROM sessions WHERE id = $1`, [sessionId])).toEqual([{ n: 0 }]);
    expect(await queuedJobs()).toBe(0);
    await t.app.get(OtpMailRelay).relayBatch();
    await sleep(500);
    expect(t.smtp.countTo(to)).toBe(0);
  });

  it('stores the locale on the session as a BCP 47 tag (en by default), checked by PostgreSQL', async () => {
    await t.smtp.stop();
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    const sessionId = started.body.uuid.replace(/^ses-/, '');
    expect(await t.db.query(`SELECT locale FROM sessions WHERE id = $1`, [sessionId])).toEqual([{ locale: 'en' }]);
    await expect(t.db.query(`UPDATE sessions SET locale = 'not a tag!' WHERE id = $1`, [sessionId])).rejects.toThrow(
      /sessions_locale_check/,
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

  it('sends nothing for a pending session revoked while its mail waited, and deletes the mail', async () => {
    const relay = t.app.get(OtpMailRelay);
    await relay.stop(); // the mail waits in the outbox until the session is revoked
    const to = email();
    const started = await startLogin(t, othr(to)).expect(201);
    await request(t.http).delete(`/sessions/${started.body.uuid}`).set('Authorization', `Bearer ${started.body.token}`).expect(204);
    expect(await relay.relayBatch()).toEqual({ handed: 1, jobs: 1 });
    expect(await until(queuedJobs, (c) => c === 0, 5_000)).toBe(0);
    await sleep(500);
    expect(t.smtp.countTo(to)).toBe(0);
  });

  it('counts the mails the sweep drops unsent (their codes expired in the queue) in mails_failed_total', async () => {
    await t.app.get(OtpMailRelay).stop(); // waiting in the outbox: no worker drops them first
    await startLogin(t, othr(email())).expect(201);
    await startLogin(t, othr(email())).expect(201);
    t.clock.advance(301);
    const result = await t.app.get(SessionSweepService).sweep();
    expect(result).toMatchObject({ skipped: false, mailsDropped: 2 });
    expect(await queuedJobs()).toBe(0);
    const metrics = await request(t.http).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/^mails_failed_total 2$/m);
  });

  it('gives up once the code has expired, without sending it', async () => {
    const smtp = await smtpDown(t);
    const to = email();
    await startLogin(t, othr(to)).expect(201);
    await sleep(1_000);
    t.clock.advance(301);
    const left = await until(queuedJobs, (c) => c === 0, 15_000);
    expect(left).toBe(0);
    // Counted once its outbox row is deleted (the batched delete's answer may come a moment later).
    const failed = async () => metricValue(t.http, 'mails_failed_total');
    expect(await until(failed, (n) => n === 1, 5_000)).toBe(1);
    await smtp.whenBack(async (revived) => {
      await sleep(1_000);
      expect(revived.countTo(to)).toBe(0);
    });
  }, 30_000);

  it('enqueues nothing for a request that is refused (the job shares the session\'s transaction)', async () => {
    const app = await createTestApp({ OTP_MAX_SENDS_PER_HOUR: '1' });
    try {
      const to = email();
      await startLogin(app, othr(to)).expect(201);
      await app.smtp.codeFor(to);
      // The sent mail's outbox row is deleted a few ms after delivery (batched): wait for that first.
      const outboxRows = async () => Number((await app.db.query<{ c: string }>(`SELECT count(*) AS c FROM mail_outbox`))[0].c);
      await until(outboxRows, (c) => c === 0, 5_000);
      await startLogin(app, { user: { email: to }, device: { type: 'othr', vendor_uuid: '6ba7b810-9dad-11d1-80b4-00c04fd430c8' } }).expect(429);
      await sleep(100);
      expect(await outboxRows()).toBe(0);
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
