import { getDataSourceToken } from '@nestjs/typeorm';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { randomBytes, randomUUID } from 'node:crypto';
import { namedStatementClient, statementName } from '../../src/database/named-statements.js';
import { Device } from '../../src/sessions/entities/device.entity.js';
import { Session } from '../../src/sessions/entities/session.entity.js';
import { User } from '../../src/sessions/entities/user.entity.js';
import { NAMED_STATEMENTS, SESSION_SQL } from '../../src/sessions/session-statements.js';
import { SessionsRepository } from '../../src/sessions/sessions.repository.js';
import { hashToken } from '../../src/security/token.js';
import { createMediumModule, insertSession, type MediumContext, sessionRow } from './medium-module.js';

describe('SessionsRepository (medium: real PostgreSQL, no HTTP)', () => {
  let ctx: MediumContext;
  let repository: SessionsRepository;
  beforeAll(async () => {
    ctx = await createMediumModule([]);
    repository = ctx.get(SessionsRepository);
  });
  afterAll(() => ctx.close());

  describe('named statements through the pool option `Client`', () => {
    it('runs the hot-path texts as named statements on the connection, and other texts unnamed', async () => {
      const Client = namedStatementClient(NAMED_STATEMENTS);
      const pool = new pg.Pool({ connectionString: ctx.db.url, max: 1, Client });
      try {
        await pool.query(SESSION_SQL.findByTokenHash, [Buffer.alloc(32)]);
        await pool.query('SELECT $1::int AS one', [1]);
        const { rows } = await pool.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name');
        expect(rows.map((r) => r.name)).toEqual([statementName(SESSION_SQL.findByTokenHash)]);
      } finally {
        await pool.end();
      }
    });

    it("is the application's pool client: a hot-path text run through TypeORM's query() is prepared on its connection", async () => {
      const s = await insertSession(ctx, { status: 'confirmed' });
      expect(await repository.findByTokenHash(hashToken(s.token))).toMatchObject({ id: s.id, userId: s.userId, deviceId: s.deviceId });
      const dataSource = ctx.module.get<DataSource>(getDataSourceToken());
      // One transaction, one connection: the statement and the look at its prepared statements.
      const names = await dataSource.transaction(async (manager) => {
        await manager.query(SESSION_SQL.findByTokenHash, [hashToken(s.token)]);
        return (await manager.query('SELECT name FROM pg_prepared_statements')) as { name: string }[];
      });
      expect(names.map((r) => r.name)).toContain(statementName(SESSION_SQL.findByTokenHash));
    });
  });

  describe('hot paths: rows of the named statements as entities', () => {
    it('findByTokenHash: a Session with its User and Device, the row\'s values under the entities\' names', async () => {
      const s = await insertSession(ctx, { status: 'confirmed', type: 'othr' });
      const session = await repository.findByTokenHash(hashToken(s.token));
      expect(session).toBeInstanceOf(Session);
      expect(session!.user).toBeInstanceOf(User);
      expect(session!.device).toBeInstanceOf(Device);
      const now = ctx.clock.now();
      expect({ ...session!, user: { ...session!.user }, device: { ...session!.device } }).toEqual({
        id: s.id,
        userId: s.userId,
        user: { id: s.userId, email: `${s.userId}@medium.test` },
        deviceId: s.deviceId,
        device: { id: s.deviceId, userId: s.userId, type: 'othr', vendorUuid: null },
        status: 'confirmed',
        tokenHash: hashToken(s.token),
        otpHash: null,
        otpExpiresAt: new Date(now.getTime() + 300_000),
        otpAttemptsLeft: 5,
        createdAt: now,
        confirmedAt: now,
        expiresAt: null,
        clientIp: null,
        userAgent: null,
        lastSeenAt: null,
      });
    });

    it('findByTokenHash: null for a token of no session', async () => {
      expect(await repository.findByTokenHash(hashToken('no such token'))).toBeNull();
    });

    it('startLogin: a created session of a known user and device gets their ids set on it, like save()', async () => {
      const limits = { resendCooldown: 0, maxSendsPerHour: 10 };
      const email = `${randomUUID()}@medium.test`;
      const vendorUuid = randomUUID();
      const first = pendingSession(email, vendorUuid);
      expect(await repository.startLogin(first, limits, { to: email })).toEqual({ isNewUser: true, isNewDevice: true, refusal: null });
      expect(first).toMatchObject({ userId: first.user.id, deviceId: first.device.id, device: { userId: first.user.id } });

      const second = pendingSession(email, vendorUuid);
      expect(second.user.id).not.toBe(first.user.id);
      expect(await repository.startLogin(second, limits, { to: email })).toEqual({ isNewUser: false, isNewDevice: false, refusal: null });
      expect(second).toMatchObject({
        userId: first.user.id,
        user: { id: first.user.id, email },
        deviceId: first.device.id,
        device: { id: first.device.id, userId: first.user.id, type: 'mobi', vendorUuid },
      });
      expect(await sessionRow(ctx, second.id)).toMatchObject({ user_id: first.user.id, device_id: first.device.id, locale: 'de' });
    });
  });

  /** A new pending mobi session as SessionsService builds one, with fresh ids for its user and device. */
  function pendingSession(email: string, vendorUuid: string): Session {
    const now = ctx.clock.now();
    const user = Object.assign(new User(), { id: randomUUID(), email });
    const device = Object.assign(new Device(), { id: randomUUID(), userId: user.id, type: 'mobi' as const, vendorUuid });
    return Object.assign(new Session(), {
      id: randomUUID(), userId: user.id, user, deviceId: device.id, device, status: 'pending' as const,
      tokenHash: hashToken(randomBytes(32).toString('base64url')), otpHash: randomBytes(32),
      otpExpiresAt: new Date(now.getTime() + 300_000), otpAttemptsLeft: 5, createdAt: now, confirmedAt: null, expiresAt: null,
      endedAt: null, clientIp: null, userAgent: null, lastSeenAt: null, locale: 'de',
    });
  }

  describe('cold paths (Repository and QueryBuilder)', () => {
    it('listLiveForUser: the live sessions of the user only, newest first, with user and device', async () => {
      const first = await insertSession(ctx, { status: 'confirmed', createdAt: new Date(ctx.clock.now().getTime() - 2000) });
      const second = await insertSession(ctx, { userId: first.userId, type: 'othr', createdAt: new Date(ctx.clock.now().getTime() - 1000) });
      await ctx.db.query(`INSERT INTO devices (id, user_id, type) VALUES (gen_random_uuid(), $1, 'othr')`, [first.userId]).catch(() => undefined);
      await insertSession(ctx, { userId: first.userId, deviceId: first.deviceId, status: 'revoked' });
      await insertSession(ctx, { userId: first.userId, deviceId: first.deviceId, otpAttemptsLeft: 0 });
      await insertSession(ctx, { status: 'confirmed' }); // another user
      const live = await repository.listLiveForUser(first.userId, ctx.clock.now());
      expect(live.map((s) => s.id)).toEqual([second.id, first.id]);
      expect(live[1]).toMatchObject({
        userId: first.userId,
        user: { id: first.userId, email: `${first.userId}@medium.test` },
        deviceId: first.deviceId,
        device: { id: first.deviceId, type: 'mobi' },
      });
    });

    it('revoke: a live session becomes revoked; one past its time becomes expired; an ended one is left alone', async () => {
      const now = ctx.clock.now();
      const live = await insertSession(ctx, { status: 'confirmed' });
      const timedOut = await insertSession(ctx, { otpExpiresAt: now });
      const ended = await insertSession(ctx, { status: 'expired' });
      const endedBefore = await sessionRow(ctx, ended.id);
      expect(await repository.revoke(live.id, now)).toBe(true);
      expect(await repository.revoke(timedOut.id, now)).toBe(false);
      expect(await repository.revoke(ended.id, now)).toBe(false);
      expect(await sessionRow(ctx, live.id)).toMatchObject({ status: 'revoked', ended_at: now, otp_hash: null });
      expect(await sessionRow(ctx, timedOut.id)).toMatchObject({ status: 'expired', ended_at: now });
      expect(await sessionRow(ctx, ended.id)).toEqual(endedBefore);
    });

    it('touchLastSeen: writes only when last_seen_at is unset or not after staleBefore', async () => {
      const s = await insertSession(ctx, { status: 'confirmed' });
      const t0 = ctx.clock.now();
      await repository.touchLastSeen(s.id, t0, new Date(t0.getTime() - 60_000));
      expect((await sessionRow(ctx, s.id)).last_seen_at).toEqual(t0);
      const t1 = new Date(t0.getTime() + 30_000);
      await repository.touchLastSeen(s.id, t1, new Date(t1.getTime() - 60_000));
      expect((await sessionRow(ctx, s.id)).last_seen_at).toEqual(t0);
      const t2 = new Date(t0.getTime() + 60_000);
      await repository.touchLastSeen(s.id, t2, new Date(t2.getTime() - 60_000));
      expect((await sessionRow(ctx, s.id)).last_seen_at).toEqual(t2);
    });

    it('expireDue and deleteEndedBefore work in batches of the given size', async () => {
      const dataSource = ctx.module.get<DataSource>(getDataSourceToken());
      await ctx.db.query(`DELETE FROM sessions`);
      const now = ctx.clock.now();
      for (let i = 0; i < 3; i++) await insertSession(ctx, { otpExpiresAt: now });
      for (let i = 0; i < 2; i++) await insertSession(ctx, { status: 'confirmed', expiresAt: now });
      await insertSession(ctx); // still live
      expect(await repository.expireDue(dataSource.manager, now, 2)).toBe(4); // 2 pending + 2 confirmed
      expect(await repository.expireDue(dataSource.manager, now, 2)).toBe(1);
      expect(await repository.expireDue(dataSource.manager, now, 2)).toBe(0);
      const later = new Date(now.getTime() + 1);
      expect(await repository.deleteEndedBefore(dataSource.manager, later, 4)).toBe(4);
      expect(await repository.deleteEndedBefore(dataSource.manager, later, 4)).toBe(1);
      expect(await ctx.db.query(`SELECT status FROM sessions`)).toEqual([{ status: 'pending' }]);
    });
  });

  describe('schema drift: the entities describe what the migrations create', () => {
    it("TypeORM's schema builder (what `migration:generate` runs) finds nothing to change on a migrated database", async () => {
      const dataSource = ctx.module.get<DataSource>(getDataSourceToken());
      const { upQueries } = await dataSource.driver.createSchemaBuilder().log();
      expect(upQueries.map((q) => q.query)).toEqual([]);
    });

    it('and does find a difference when the database lacks something the entities declare', async () => {
      const dataSource = ctx.module.get<DataSource>(getDataSourceToken());
      await ctx.db.query(`DROP INDEX otp_sends_sent_at_idx`);
      try {
        const { upQueries } = await dataSource.driver.createSchemaBuilder().log();
        expect(upQueries.map((q) => q.query)).toEqual([expect.stringMatching(/^CREATE INDEX "otp_sends_sent_at_idx"/)]);
      } finally {
        await ctx.db.query(`CREATE INDEX otp_sends_sent_at_idx ON otp_sends (sent_at)`);
      }
    });
  });
});
