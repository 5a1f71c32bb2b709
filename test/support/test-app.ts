import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import type { App } from 'supertest/types.js';
import { AppModule } from '../../src/app.module.js';
import { configureApp } from '../../src/app.setup.js';
import { Clock } from '../../src/common/clock.js';
import { loadAppConfig } from '../../src/config/app-config.js';
import { createHttpAdapter } from '../../src/http/http-adapter.js';
import { FakeClock } from './fake-clock.js';
import { SmtpSink } from './smtp-sink.js';
import { createMigratedTestDatabase, type TestDatabase } from './test-database.js';

export interface TestApp {
  app: INestApplication;
  /** Every route Fastify registered: method and URL pattern (`/sessions/:uuid`). */
  routes: { method: string; url: string }[];
  http: App;
  clock: FakeClock;
  smtp: SmtpSink;
  db: TestDatabase;
  close(): Promise<void>;
}

export const TEST_SECRET = 'test-secret-0123456789-0123456789-abcdef';

/**
 * The environment the spawned-server tests start the built service (or mail worker) with: the test
 * database and SMTP sink, TEST_SECRET, no per-IP limit, every log line; `overrides` win.
 */
export function testServerEnv(db: { url: string }, smtp: { url: string }, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    SMTP_URL: smtp.url,
    APP_SECRET: TEST_SECRET,
    MAIL_FROM: 'Login <login@test.local>',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'log',
    ...overrides,
  };
}

/**
 * The real application (real HTTP stack, real PostgreSQL, real SMTP server) on a private database,
 * with an injectable clock. `env` overrides the defaults below.
 * The database is a copy of the run's migrated template unless `options.database` is given (pass
 * createTestDatabase() to have the application migrate an empty one, as on a first start).
 * @param options.logStream where log lines go (set LOG_LEVEL in `env` to see them)
 * @param options.database run on this database instead of a new one (several apps may share it);
 *   `close()` then leaves it in place: its owner drops it
 */
export async function createTestApp(
  env: Record<string, string> = {},
  options: { logStream?: DestinationStream; database?: TestDatabase } = {},
): Promise<TestApp> {
  const db = options.database ?? (await createMigratedTestDatabase());
  const smtp = await SmtpSink.start();
  const clock = new FakeClock();
  const appEnv = {
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    SMTP_URL: smtp.url,
    APP_SECRET: TEST_SECRET,
    MAIL_FROM: 'Login <login@test.local>',
    LOG_LEVEL: 'fatal',
    RATE_LIMIT_PER_MINUTE: '0', // per-IP limit off: every test client is 127.0.0.1; tested on its own
    ...env,
  };
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.register({ env: appEnv, logStream: options.logStream })],
  })
    .overrideProvider(Clock)
    .useValue(clock)
    .compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(createHttpAdapter(loadAppConfig(appEnv)), {
    bodyParser: false,
    bufferLogs: true,
  });
  app.useLogger(app.get(Logger));
  const routes: TestApp['routes'] = [];
  app.getHttpAdapter().getInstance().addHook('onRoute', ({ method, url }) => {
    for (const one of [method].flat()) routes.push({ method: one, url });
  });
  await configureApp(app);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return {
    app,
    routes,
    http: app.getHttpServer(),
    clock,
    smtp,
    db,
    close: async () => {
      await app.close();
      await smtp.stop();
      if (!options.database) await db.drop();
    },
  };
}
