import { getDataSourceToken } from '@nestjs/typeorm';
import { runMigrations as installGraphileWorker } from 'graphile-worker';
import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { statementName } from '../../src/database/named-statements.js';
import { OTP_MAIL_TASK } from '../../src/mail/otp-mail.job.js';
import { MAILS_PER_JOB, MAX_ATTEMPTS, OtpMailRelay, RELAY_BATCH, RELAY_STATEMENTS } from '../../src/mail/otp-mail.relay.js';
import { createMediumModule, insertSession, type MediumContext } from './medium-module.js';

describe('OtpMailRelay (medium: real PostgreSQL, no HTTP)', () => {
  let ctx: MediumContext;
  let relay: OtpMailRelay;
  beforeAll(async () => {
    ctx = await createMediumModule([OtpMailRelay]);
    relay = ctx.get(OtpMailRelay);
    await installGraphileWorker({ connectionString: ctx.db.url, logger: undefined }); // its documented schema installer
  });
  afterAll(() => ctx.close());

  /** A waiting outbox row of a new pending session, at `revision`, whose code expires in `expiresIn` seconds. */
  async function queued(revision: number, expiresIn = 300): Promise<string> {
    const { id } = await insertSession(ctx);
    await ctx.db.query(
      `INSERT INTO mail_outbox (session_id, revision, payload, expires_at, queued_at)
       VALUES ($1, $2, '{}', now() + make_interval(secs => $3), clock_timestamp())`,
      [id, revision, expiresIn],
    );
    return id;
  }
  const outbox = async () =>
    (await ctx.db.query<{ session_id: string; revision: number }>(`SELECT session_id, revision FROM mail_outbox ORDER BY queued_at`)).map(
      (r) => [r.session_id, r.revision],
    );

  it('deletes the rows of settled mails together, only the revision that was sent', async () => {
    const [sent, alsoSent, replaced] = [await queued(1), await queued(3), await queued(2)];
    relay.settle(sent, 1);
    relay.settle(alsoSent, 3);
    relay.settle(replaced, 1); // a resend made revision 2 while revision 1 was being sent: 2 stays
    expect(await outbox()).toHaveLength(3); // nothing yet: they wait for one statement
    await relay.flushSettled();
    expect(await outbox()).toEqual([[replaced, 2]]);
  });

  it('tells a settled mail that its row was deleted, and not when the row was gone already (the sweep purged it: counted once)', async () => {
    const [expired, purged, replaced] = [await queued(1), await queued(1), await queued(2)];
    await ctx.db.query('DELETE FROM mail_outbox WHERE session_id = $1', [purged]); // as the sweep's purge does
    const deleted: string[] = [];
    relay.settle(expired, 1, () => deleted.push(expired));
    relay.settle(purged, 1, () => deleted.push(purged));
    relay.settle(replaced, 1, () => deleted.push(replaced)); // revision 2 waits: revision 1 is gone
    await relay.flushSettled();
    expect(deleted).toEqual([expired]);
    expect(await outbox()).toContainEqual([replaced, 2]);
    await ctx.db.query('DELETE FROM mail_outbox');
  });

  it('deletes them on its own within a moment, and again for mails settled while a delete runs', async () => {
    const first = await queued(1);
    relay.settle(first, 1);
    await expect.poll(outbox, { timeout: 2_000, interval: 10 }).not.toContainEqual([first, 1]);
    const [a, b] = [await queued(1), await queued(1)];
    relay.settle(a, 1);
    const flushing = relay.flushSettled();
    relay.settle(b, 1); // arrives while the first batch is being deleted
    await flushing;
    await expect.poll(outbox, { timeout: 2_000, interval: 10 }).toEqual(expect.not.arrayContaining([[a, 1], [b, 1]]));
  });

  it('hands over the rows of the sessions it is given (or the oldest), up to MAILS_PER_JOB mails per job', async () => {
    await ctx.db.query('DELETE FROM mail_outbox');
    const ids: string[] = [];
    for (let i = 0; i < MAILS_PER_JOB + 5; i++) ids.push(await queued(1));
    const waiting = async () => (await ctx.db.query<{ session_id: string }>(`SELECT session_id FROM mail_outbox WHERE handed_over_at IS NULL`)).map((r) => r.session_id);

    expect(await relay.relayBatch(500, [ids[3], ids[7]])).toEqual({ handed: 2, jobs: 1 });
    expect(await waiting()).toHaveLength(MAILS_PER_JOB + 3);
    expect(await waiting()).not.toEqual(expect.arrayContaining([ids[3]]));
    expect(await relay.relayBatch(500, [ids[3]])).toEqual({ handed: 0, jobs: 0 }); // handed over already
    expect(await relay.relayBatch()).toEqual({ handed: MAILS_PER_JOB + 3, jobs: 2 });
    expect(await waiting()).toEqual([]);
  });

  /** The relay's pass (the first of RELAY_STATEMENTS, with relayBatch's parameters) for `ids`, in `manager`'s transaction. */
  const passIn = (manager: EntityManager, ids: string[]) =>
    manager.query(RELAY_STATEMENTS[0], [RELAY_BATCH, MAILS_PER_JOB, OTP_MAIL_TASK, MAX_ATTEMPTS, ids]) as Promise<{ handed: number; jobs: number }[]>;
  const inOneTransaction = <T>(work: (manager: EntityManager) => Promise<T>) => ctx.module.get<DataSource>(getDataSourceToken()).transaction(work);

  it("runs its pass as a named statement on the application's connections (planned once per connection)", async () => {
    // One transaction, one connection: the pass (for no session: nothing to hand over) and the look at its prepared statements.
    const names = await inOneTransaction(async (manager) => {
      expect(await passIn(manager, [])).toEqual([{ handed: 0, jobs: 0 }]);
      return (await manager.query('SELECT name FROM pg_prepared_statements')) as { name: string }[];
    });
    expect(names.map((r) => r.name)).toContain(statementName(RELAY_STATEMENTS[0]));
  });

  it('hands rows over with heap-only updates: no index entry written (migration 1764921600000)', async () => {
    await ctx.db.query('DELETE FROM mail_outbox');
    const ids = [await queued(1), await queued(1), await queued(1)];
    // This backend's counts not reported yet (pg_stat_xact_*), read before and after the pass in one transaction.
    const counts = await inOneTransaction(async (manager) => {
      const read = async () =>
        ((await manager.query(`SELECT n_tup_upd::int AS updated, n_tup_hot_upd::int AS "heapOnly" FROM pg_stat_xact_user_tables WHERE relname = 'mail_outbox'`)) as {
          updated: number;
          heapOnly: number;
        }[])[0];
      const before = await read();
      expect(await passIn(manager, ids)).toEqual([{ handed: 3, jobs: 1 }]);
      const after = await read();
      return { updated: after.updated - before.updated, heapOnly: after.heapOnly - before.heapOnly };
    });
    expect(counts).toEqual({ updated: 3, heapOnly: 3 });
  });

  it('reads for a job only the mails still at the revision it names, with the locale and whether the code is still usable', async () => {
    const [current, replaced, settled, revoked] = [await queued(1), await queued(2), randomUUID(), await queued(1)];
    await ctx.db.query(`UPDATE sessions SET status = 'revoked', ended_at = now() WHERE id = $1`, [revoked]);
    const refs = [
      { sessionId: current, revision: 1 },
      { sessionId: replaced, revision: 1 }, // a resend made revision 2
      { sessionId: settled, revision: 1 }, // no outbox row any more
      { sessionId: revoked, revision: 1 },
    ];
    const byId = async (at: Date) => new Map((await relay.mailsToSend(refs, at)).map((m) => [m.sessionId, m]));
    const now = await byId(new Date());
    expect([...now.keys()].sort()).toEqual([current, revoked].sort());
    expect(now.get(current)).toEqual({ sessionId: current, revision: 1, payload: {}, locale: 'en', codeUsable: true });
    expect(now.get(revoked)?.codeUsable).toBe(false);
    expect((await byId(new Date(Date.now() + 301_000))).get(current)?.codeUsable).toBe(false); // past the code's expiry
  });

  it('purges the mails whose code expired, a batch at a time, handed over to graphile-worker or not, and keeps the others', async () => {
    await ctx.db.query('DELETE FROM mail_outbox');
    const [, , , live] = [await queued(1, -60), await queued(1, -60), await queued(1, -1), await queued(1, 300)];
    expect(await relay.relayBatch(1)).toEqual({ handed: 1, jobs: 1 }); // the first one now has a job, which will send nothing for it
    expect(await relay.purgeExpired(new Date(), 2)).toBe(2);
    expect(await relay.purgeExpired(new Date(), 2)).toBe(1);
    expect(await relay.purgeExpired(new Date(), 2)).toBe(0);
    expect(await outbox()).toEqual([[live, 1]]);
  });
});
