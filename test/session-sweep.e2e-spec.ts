import { SchedulerRegistry } from '@nestjs/schedule';
import pg from 'pg';
import request from 'supertest';
import { SessionSweepService, type SweepResult } from '../src/sessions/session-sweep.service.js';
import { createTestApp, type TestApp } from './support/test-app.js';
import {
  confirm,
  createConfirmedSession,
  createPendingSession,
  errorBody,
  mobi,
  othr,
  uniqueEmail,
  wrongCode,
} from './support/factories.js';

/**
 * The periodic expiry job, called directly (`SessionSweepService.sweep()`) at the injected clock's
 * time: it marks sessions past their code's or their own expiry as `expired`, deletes ended
 * sessions older than SESSION_RETENTION_DAYS, and is safe with several replicas sweeping at once.
 */

type Json = Record<string, any>;
type Session = { uuid: string; token: string; code: string; body: Json };

const DAY = 86_400;
const OTHR_TTL = 7_200;
const OTP_TTL = 300;

let vendorCounter = 0;
const vendor = (): string => `6ba7b810-9dad-41d1-80b4-${String(++vendorCounter).padStart(12, '0')}`;
const bearer = (token: string) => `Bearer ${token}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An app whose scheduled sweep is off, so that only the test sweeps. */
async function startApp(env: Record<string, string> = {}, options: Parameters<typeof createTestApp>[1] = {}): Promise<TestApp> {
  const app = await createTestApp(env, options);
  app.app.get(SchedulerRegistry).deleteInterval('session-sweep');
  return app;
}

const sweepOf = (app: TestApp): Promise<SweepResult> => app.app.get(SessionSweepService).sweep();

/** Every sessions row by public id, every column plus `xmin` (which any write to the row changes). */
async function allRows(t: TestApp): Promise<Map<string, Json>> {
  const rows = await t.db.query(`SELECT xmin::text AS xmin, s.* FROM sessions s ORDER BY s.id`);
  return new Map(rows.map((r) => [`ses-${r.id}`, r]));
}

async function counts(t: TestApp): Promise<Record<'users' | 'devices' | 'sessions' | 'otp_sends', number>> {
  const [row] = await t.db.query<Record<'users' | 'devices' | 'sessions' | 'otp_sends', number>>(
    `SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM devices)::int AS devices,
            (SELECT count(*) FROM sessions)::int AS sessions, (SELECT count(*) FROM otp_sends)::int AS otp_sends`,
  );
  return row;
}

/** Waits until every queued login mail has been sent and its outbox row deleted. */
async function mailQueueDrained(t: TestApp): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [{ n }] = await t.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM mail_outbox`);
    if (n === 0) return;
    if (Date.now() > deadline) throw new Error(`${n} mail jobs still queued`);
    await sleep(50);
  }
}

/** Five wrong codes: the session ends as `expired` (ended_at = now). */
async function exhaust(t: TestApp, session: Session): Promise<void> {
  for (let i = 0; i < 5; i++) await confirm(t, session.uuid, session.token, wrongCode(session.code)).expect(400);
}

/** Logout with the session's own token: `revoked` (ended_at = now). */
async function logout(t: TestApp, session: Session): Promise<void> {
  await request(t.http).delete(`/sessions/${session.uuid}`).set('Authorization', bearer(session.token)).expect(204);
}

const work = (r: SweepResult) => (r.skipped ? null : { expired: r.expired, deleted: r.deleted, sendsDeleted: r.sendsDeleted });

describe('expiry sweep (SessionSweepService.sweep)', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startApp();
  });
  afterEach(() => t.close());

  it('marks pending sessions past their code\'s expiry and othr sessions past expires_at as expired, and touches nothing else', async () => {
    const email = uniqueEmail('sweep');
    const codeExpired = await createPendingSession(t, mobi(email, vendor()));
    const webExpired = await createConfirmedSession(t, othr(email));
    const phone = await createConfirmedSession(t, mobi(email, vendor())); // mobi: no expiry
    const revoked = await createPendingSession(t, mobi(email, vendor()));
    await logout(t, revoked);
    const exhausted = await createPendingSession(t, mobi(email, vendor()));
    await exhaust(t, exhausted);
    t.clock.advance(OTHR_TTL);
    const pending = await createPendingSession(t, mobi(email, vendor()));
    const web = await createConfirmedSession(t, othr(email, vendor()));
    await mailQueueDrained(t);

    const before = await allRows(t);
    expect(before.get(codeExpired.uuid)).toMatchObject({ status: 'pending', ended_at: null });
    expect(before.get(webExpired.uuid)).toMatchObject({ status: 'confirmed', ended_at: null });
    const sendsBefore = await counts(t);

    const result = await sweepOf(t);
    const now = t.clock.now();
    expect(result).toEqual({ skipped: false, expired: 2, deleted: 0, sendsDeleted: 5, mailsDropped: 0 });

    const after = await allRows(t);
    expect([...after.keys()]).toEqual([...before.keys()]);
    expect(after.get(codeExpired.uuid)).toEqual({
      ...before.get(codeExpired.uuid),
      xmin: expect.any(String),
      status: 'expired',
      otp_hash: null,
      ended_at: now,
    });
    expect(after.get(webExpired.uuid)).toEqual({ ...before.get(webExpired.uuid), xmin: expect.any(String), status: 'expired', ended_at: now });
    // Live sessions (a mobi session without expiry among them) and ended ones: not written at all.
    for (const s of [phone, pending, web, revoked, exhausted]) {
      expect({ uuid: s.uuid, row: after.get(s.uuid) }).toEqual({ uuid: s.uuid, row: before.get(s.uuid) });
    }
    // The five sends of two hours ago are pruned (no limit looks back that far), the two recent ones kept.
    expect(await counts(t)).toEqual({ ...sendsBefore, otp_sends: 2 });

    // Through HTTP: the expired ones say so, the live ones still work.
    expect((await confirm(t, codeExpired.uuid, codeExpired.token, codeExpired.code).expect(400)).body).toEqual(errorBody(400, 'session_expired'));
    await request(t.http).get('/sessions/current').set('Authorization', bearer(webExpired.token)).expect(401);
    await request(t.http).get('/sessions/current').set('Authorization', bearer(web.token)).expect(200);
    const listed = await request(t.http).get('/sessions').set('Authorization', bearer(phone.token)).expect(200);
    expect(listed.body.sessions.map((s: Json) => s.uuid).sort()).toEqual([phone.uuid, pending.uuid, web.uuid].sort());
    await confirm(t, pending.uuid, pending.token, pending.code).expect(200);
  });

  it('expires a code or an othr session at its deadline, not a second before', async () => {
    const email = uniqueEmail('sweep-edge');
    const pending = await createPendingSession(t, mobi(email, vendor()));
    const web = await createConfirmedSession(t, othr(email));
    await mailQueueDrained(t);
    const status = async (s: Session) => (await allRows(t)).get(s.uuid)!.status;

    t.clock.advance(OTP_TTL - 1);
    expect(work(await sweepOf(t))).toEqual({ expired: 0, deleted: 0, sendsDeleted: 0 });
    expect(await status(pending)).toBe('pending');
    t.clock.advance(1);
    expect(work(await sweepOf(t))).toEqual({ expired: 1, deleted: 0, sendsDeleted: 0 });
    expect(await status(pending)).toBe('expired');

    t.clock.advance(OTHR_TTL - OTP_TTL - 1);
    expect(work(await sweepOf(t))).toEqual({ expired: 0, deleted: 0, sendsDeleted: 2 });
    expect(await status(web)).toBe('confirmed');
    t.clock.advance(1);
    expect(work(await sweepOf(t))).toEqual({ expired: 1, deleted: 0, sendsDeleted: 0 });
    expect(await status(web)).toBe('expired');
  });

  it('deletes expired and revoked sessions that ended more than SESSION_RETENTION_DAYS (30) ago, and no others', async () => {
    const email = uniqueEmail('retention');
    const phone = await createConfirmedSession(t, mobi(email, vendor())); // live for ever
    const generations: { expired: Session; revoked: Session }[] = [];
    for (let day = 0; day < 3; day++) {
      if (day > 0) t.clock.advance(DAY);
      const expired = await createPendingSession(t, mobi(email, vendor()));
      await exhaust(t, expired);
      const revoked = await createConfirmedSession(t, othr(email, vendor()));
      await logout(t, revoked);
      generations.push({ expired, revoked });
    }
    await mailQueueDrained(t);
    const [oldest, thirtyDays, youngest] = generations;

    t.clock.advance(29 * DAY); // the generations ended 31, 30 and 29 days ago
    const before = await allRows(t);
    const countsBefore = await counts(t);
    expect(countsBefore).toMatchObject({ sessions: 7, otp_sends: 7 });

    const result = await sweepOf(t);
    // Two sessions deleted (their two sends go with them); the five other sends are over an hour old.
    expect(result).toEqual({ skipped: false, expired: 0, deleted: 2, sendsDeleted: 5, mailsDropped: 0 });
    const after = await allRows(t);
    expect([...after.keys()].sort()).toEqual(
      [phone, thirtyDays.expired, thirtyDays.revoked, youngest.expired, youngest.revoked].map((s) => s.uuid).sort(),
    );
    for (const [uuid, r] of after) expect({ uuid, row: r }).toEqual({ uuid, row: before.get(uuid) });
    expect(before.get(oldest.expired.uuid)!.status).toBe('expired');
    expect(before.get(oldest.revoked.uuid)!.status).toBe('revoked');
    // Users and devices stay; only sessions (and their sends) go.
    expect(await counts(t)).toEqual({ ...countsBefore, sessions: 5, otp_sends: 0 });

    // The sweep again at the same time: nothing to do, nothing written.
    expect(await sweepOf(t)).toEqual({ skipped: false, expired: 0, deleted: 0, sendsDeleted: 0, mailsDropped: 0 });
    expect(await allRows(t)).toEqual(after);

    await request(t.http).get('/sessions/current').set('Authorization', bearer(phone.token)).expect(200);
    expect((await confirm(t, oldest.expired.uuid, oldest.expired.token, '123456').expect(404)).body).toEqual(errorBody(404, 'session_not_found'));

    t.clock.advance(1); // the 30-day-old generation is now older than 30 days
    expect(work(await sweepOf(t))).toEqual({ expired: 0, deleted: 2, sendsDeleted: 0 });
    expect([...(await allRows(t)).keys()].sort()).toEqual([phone, youngest.expired, youngest.revoked].map((s) => s.uuid).sort());
  });

  it('counts the retention from when a session ended, not from when it was created', async () => {
    const email = uniqueEmail('retention-ended');
    const phone = await createConfirmedSession(t, mobi(email, vendor()));
    const laptop = await createConfirmedSession(t, othr(email, vendor()));
    t.clock.advance(DAY);
    // Past its 2 h expiry: the sweep marks it expired now (ended_at = now), a day after its creation.
    expect(work(await sweepOf(t))).toEqual({ expired: 1, deleted: 0, sendsDeleted: 2 });
    t.clock.advance(29 * DAY + 1); // created 30 days and a second ago, ended 29 days and a second ago
    const signedOut = await createConfirmedSession(t, mobi(email, vendor()));
    await request(t.http).delete(`/sessions/${signedOut.uuid}`).set('Authorization', bearer(phone.token)).expect(204);
    expect(work(await sweepOf(t))).toEqual({ expired: 0, deleted: 0, sendsDeleted: 0 });
    t.clock.advance(DAY);
    expect(work(await sweepOf(t))).toEqual({ expired: 0, deleted: 1, sendsDeleted: 1 });
    expect([...(await allRows(t)).keys()].sort()).toEqual([phone.uuid, signedOut.uuid].sort());
    expect([phone, signedOut].map((s) => s.uuid)).not.toContain(laptop.uuid);
  });

  it('honours SESSION_RETENTION_DAYS', async () => {
    const short = await startApp({ SESSION_RETENTION_DAYS: '2' });
    try {
      const email = uniqueEmail('retention-2');
      const older = await createPendingSession(short, mobi(email, vendor()));
      await logout(short, older);
      short.clock.advance(DAY);
      const younger = await createPendingSession(short, mobi(email, vendor()));
      await logout(short, younger);
      short.clock.advance(DAY); // `older` ended exactly 2 days ago: not older than the retention yet
      expect(work(await sweepOf(short))).toEqual({ expired: 0, deleted: 0, sendsDeleted: 2 });
      short.clock.advance(1);
      expect(work(await sweepOf(short))).toEqual({ expired: 0, deleted: 1, sendsDeleted: 0 });
      expect([...(await allRows(short)).keys()]).toEqual([younger.uuid]);
    } finally {
      await short.close();
    }
  });

  describe('several replicas', () => {
    let replica: TestApp | undefined;
    afterEach(async () => {
      await replica?.close();
      replica = undefined;
    });

    /**
     * Six sessions past their code's expiry, six revoked ones older than the retention and a live
     * one; then a second instance of the app on the same database (its own pool, clock and mail
     * worker: started only now, so that the mails above all went to the first app's SMTP server),
     * its clock set to the first app's.
     */
    async function dueWorkAndReplica(): Promise<{ codeExpired: Session[]; revoked: Session[]; live: Session; replica: TestApp }> {
      const codeExpired: Session[] = [];
      const revoked: Session[] = [];
      for (let i = 0; i < 6; i++) {
        const email = uniqueEmail(`replicas-${i}`);
        const old = await createPendingSession(t, mobi(email, vendor()));
        await logout(t, old);
        revoked.push(old);
        codeExpired.push(await createPendingSession(t, mobi(email, vendor())));
      }
      t.clock.advance(31 * DAY);
      const live = await createConfirmedSession(t, mobi(uniqueEmail('replicas-live'), vendor()));
      await mailQueueDrained(t);
      replica = await startApp({}, { database: t.db });
      replica.clock.advance((t.clock.now().getTime() - replica.clock.now().getTime()) / 1000);
      return { codeExpired, revoked, live, replica };
    }

    it('sweeping at once from two replicas (and twice from each) raises no error and does the work exactly once', async () => {
      const { codeExpired, revoked, live, replica } = await dueWorkAndReplica();
      const before = await allRows(t);

      const results = await Promise.all([sweepOf(t), sweepOf(replica), sweepOf(t), sweepOf(replica)]);
      const done = results.filter((r): r is Extract<SweepResult, { skipped: false }> => !r.skipped);
      for (const r of results) if (r.skipped) expect(r).toEqual({ skipped: true });
      expect(done.length).toBeGreaterThanOrEqual(1);
      const total = (key: 'expired' | 'deleted' | 'sendsDeleted') => done.reduce((sum, r) => sum + r[key], 0);
      // 6 expired, 6 deleted (with their 6 sends), the 6 other old sends pruned.
      expect({ expired: total('expired'), deleted: total('deleted'), sendsDeleted: total('sendsDeleted') }).toEqual({
        expired: 6,
        deleted: 6,
        sendsDeleted: 6,
      });

      const after = await allRows(t);
      expect([...after.keys()].sort()).toEqual([...codeExpired.map((s) => s.uuid), live.uuid].sort());
      for (const s of codeExpired) expect(after.get(s.uuid)).toMatchObject({ status: 'expired', ended_at: t.clock.now() });
      for (const s of revoked) expect(after.has(s.uuid)).toBe(false);
      expect(after.get(live.uuid)).toEqual(before.get(live.uuid));

      // Once more from both: nothing left to do.
      const again = await Promise.all([sweepOf(t), sweepOf(replica)]);
      for (const r of again) expect(work(r) ?? { expired: 0, deleted: 0, sendsDeleted: 0 }).toEqual({ expired: 0, deleted: 0, sendsDeleted: 0 });
      expect(await allRows(t)).toEqual(after);
    });

    it('a sweep that starts while another replica is sweeping returns skipped at once, and the first finishes the work', async () => {
      const { codeExpired, replica } = await dueWorkAndReplica();
      // Hold one of the rows the first sweep must update, so that it stays in the middle of its work.
      const blocker = new pg.Client({ connectionString: t.db.url });
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, [codeExpired[0].uuid.slice(4)]);

        let firstDone = false;
        const first = sweepOf(t).finally(() => {
          firstDone = true;
        });
        // Wait until the first sweep holds the advisory lock and waits for the row.
        const deadline = Date.now() + 10_000;
        for (;;) {
          const [{ advisory, waiting }] = await t.db.query<{ advisory: number; waiting: number }>(
            `SELECT (SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                      WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database())::int AS advisory,
                    (SELECT count(*) FROM pg_stat_activity
                      WHERE datname = current_database() AND wait_event_type = 'Lock'
                        AND query LIKE 'UPDATE "sessions" SET "status" = %')::int AS waiting`,
          );
          if (advisory >= 1 && waiting === 1) break;
          if (Date.now() > deadline) throw new Error(`first sweep not in progress (advisory ${advisory}, waiting ${waiting})`);
          await sleep(20);
        }

        expect(await sweepOf(replica)).toEqual({ skipped: true });
        expect(await sweepOf(t)).toEqual({ skipped: true });
        expect(firstDone).toBe(false);
        expect((await allRows(t)).get(codeExpired[1].uuid)!.status).toBe('pending'); // the skipped sweeps did nothing

        await blocker.query('COMMIT');
        expect(await first).toEqual({ skipped: false, expired: 6, deleted: 6, sendsDeleted: 6, mailsDropped: 0 });
      } finally {
        await blocker.end();
      }
      const after = await allRows(t);
      for (const s of codeExpired) expect(after.get(s.uuid)!.status).toBe('expired');
      // The lock is free again: the next sweep runs (and has nothing to do).
      expect(await sweepOf(replica)).toEqual({ skipped: false, expired: 0, deleted: 0, sendsDeleted: 0, mailsDropped: 0 });
    });
  });
});
