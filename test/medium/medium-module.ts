import 'reflect-metadata';
import type { Provider, Type } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Clock } from '../../src/common/clock.js';
import { AppConfig, loadAppConfig } from '../../src/config/app-config.js';
import { dataSourceOptions } from '../../src/database/data-source-options.js';
import { MetricsService } from '../../src/metrics/metrics.service.js';
import { hashOtp } from '../../src/security/otp.js';
import { hashToken } from '../../src/security/token.js';
import { Session } from '../../src/sessions/entities/session.entity.js';
import { SessionsRepository } from '../../src/sessions/sessions.repository.js';
import { FakeClock } from '../support/fake-clock.js';
import { TEST_SECRET } from '../support/test-app.js';
import { createMigratedTestDatabase, type TestDatabase } from '../support/test-database.js';

/**
 * A service or repository on a real, freshly migrated PostgreSQL (a copy of the run's migrated
 * template database), without HTTP (the "medium tests" of immich's server): the real
 * SessionsRepository, TypeORM DataSource, configuration, metrics and
 * an injectable clock; `stubs` stand in for the collaborators a test does not exercise.
 */
export interface MediumContext {
  module: TestingModule;
  db: TestDatabase;
  clock: FakeClock;
  config: AppConfig;
  get<T>(type: Type<T>): T;
  close(): Promise<void>;
}

export async function createMediumModule(
  providers: Type[],
  options: { env?: Record<string, string>; stubs?: Provider[] } = {},
): Promise<MediumContext> {
  const db = await createMigratedTestDatabase();
  const config = loadAppConfig({
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    APP_SECRET: TEST_SECRET,
    SMTP_URL: 'smtp://127.0.0.1:1', // never connected to: no mail is sent in these tests
    LOG_LEVEL: 'fatal',
    ...options.env,
  });
  const clock = new FakeClock();
  const module = await Test.createTestingModule({
    imports: [TypeOrmModule.forRoot(dataSourceOptions(db.url)), TypeOrmModule.forFeature([Session])],
    providers: [
      SessionsRepository,
      MetricsService,
      ...providers,
      { provide: AppConfig, useValue: config },
      { provide: Clock, useValue: clock },
      ...(options.stubs ?? []),
    ],
  }).compile();
  return {
    module,
    db,
    clock,
    config,
    get: (type) => module.get(type),
    close: async () => {
      await module.get<DataSource>(getDataSourceToken()).destroy();
      await module.close();
      await db.drop();
    },
  };
}

/** A session row written straight into the tables (with a new user and device), in any state. */
export interface StoredSession {
  id: string;
  userId: string;
  deviceId: string;
  token: string;
  code: string;
}

export async function insertSession(
  ctx: MediumContext,
  fields: {
    status?: 'pending' | 'confirmed' | 'expired' | 'revoked';
    type?: 'mobi' | 'othr';
    otpExpiresAt?: Date;
    otpAttemptsLeft?: number;
    expiresAt?: Date | null;
    deviceId?: string;
    userId?: string;
    createdAt?: Date;
  } = {},
): Promise<StoredSession> {
  const now = ctx.clock.now();
  const id = randomUUID();
  const token = randomBytes(32).toString('base64url');
  const code = String(100_000 + Math.floor(Math.random() * 900_000));
  const userId = fields.userId ?? randomUUID();
  const deviceId = fields.deviceId ?? randomUUID();
  const type = fields.type ?? 'mobi';
  if (!fields.userId) await ctx.db.query(`INSERT INTO users (id, email) VALUES ($1, $2)`, [userId, `${userId}@medium.test`]);
  if (!fields.deviceId) {
    await ctx.db.query(`INSERT INTO devices (id, user_id, type, vendor_uuid) VALUES ($1, $2, $3, $4)`, [
      deviceId, userId, type, type === 'mobi' ? randomUUID() : null,
    ]);
  }
  const status = fields.status ?? 'pending';
  await ctx.db.query(
    `INSERT INTO sessions (id, user_id, device_id, status, token_hash, otp_hash, otp_expires_at, otp_attempts_left,
                           created_at, confirmed_at, expires_at, ended_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      id, userId, deviceId, status, hashToken(token),
      status === 'pending' ? hashOtp(TEST_SECRET, id, code) : null,
      fields.otpExpiresAt ?? new Date(now.getTime() + 300_000),
      fields.otpAttemptsLeft ?? 5,
      fields.createdAt ?? now,
      status === 'confirmed' ? now : null,
      fields.expiresAt ?? null,
      status === 'expired' || status === 'revoked' ? now : null,
    ],
  );
  return { id, userId, deviceId, token, code };
}

/** The session's row as stored. */
export async function sessionRow(ctx: MediumContext, id: string): Promise<Record<string, unknown>> {
  const [row] = await ctx.db.query(`SELECT * FROM sessions WHERE id = $1`, [id]);
  return row;
}
