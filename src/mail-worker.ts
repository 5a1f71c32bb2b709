import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { AppConfig, loadAppConfig } from './config/app-config.js';
import { useDevelopmentSecret, warnAboutAppSecret } from './config/development-secret.js';
import { loadDotEnv } from './config/dotenv.js';
import { StartupError } from './common/startup-error.js';
import { onShutdownSignals } from './common/shutdown-signals.js';
import { ConfigurationError } from './config/environment.js';
import { ReadinessService } from './health/readiness.service.js';
import { ShutdownState } from './health/shutdown-state.js';
import { describeListenAddress } from './http/listen-address.js';
import { assertPortAvailable } from './http/port-check.js';
import { OtpMailWorker } from './mail/otp-mail.worker.js';
import { MailWorkerModule } from './mail-worker/mail-worker.module.js';
import { createWorkerHttpServer, listenWorkerHttp } from './mail-worker/worker-http.js';
import { MetricsService } from './metrics/metrics.service.js';

/**
 * The mail worker process (`npm run start:worker`, `node dist/mail-worker.js`): sends the login
 * mails that service replicas queue, outside their event loop (README "Mail"). Reads the same
 * settings as the service (one environment for both); MAIL_WORKER does not change what it does (validated all the same). Serves
 * GET /health/live, GET /health/ready and GET /metrics on PORT (HOST), nothing else.
 */
async function bootstrap(): Promise<void> {
  // Fail fast, in one readable message, before Nest starts logging (the app reads it again, validated).
  loadDotEnv();
  const developmentSecret = useDevelopmentSecret(process.env);
  const early = loadAppConfig(process.env);
  if (early.database.kind === 'embedded') {
    // Its own embedded server would be a second database, holding none of the service's mail.
    throw new ConfigurationError(
      'Invalid configuration:\n  DATABASE_URL (or DB_HOST) is required by the mail worker: it sends the mail queued in the service\'s database ' +
        `(the embedded PostgreSQL of \`npm start\` is postgres://postgres:postgres@127.0.0.1:${early.database.port}/postgres)`,
    );
  }
  await assertPortAvailable(early.port, early.host);

  const app = await NestFactory.createApplicationContext(MailWorkerModule.register(), {
    bufferLogs: true,
    abortOnError: false, // let bootstrap() report start-up errors (a configuration error in one line)
    autoFlushLogs: false, // as in main.ts: a failed start prints bootstrap()'s one line only
  });
  const logger = app.get(Logger);
  app.useLogger(logger);
  app.flushLogs();
  const config = app.get(AppConfig);
  // Codes sealed by the service with another secret cannot be opened here.
  warnAboutAppSecret(logger, developmentSecret, config.appSecretGenerated, ', so it cannot open the mail the service queued');
  const server = createWorkerHttpServer(app.get(MetricsService), app.get(ReadinessService));
  await listenWorkerHttp(server, config.port, config.host);
  const listen = describeListenAddress(config.host, config.port);
  logger.log(
    `Mail worker sending (MAIL_CONCURRENCY=${config.mail.concurrency}, ${config.mail.smtpUrl ? 'SMTP' : 'to the log: no SMTP_URL'}); ` +
      `GET /metrics, /health/live and /health/ready on ${listen.url} (${listen.bound}, NODE_ENV=${config.nodeEnv})`,
    'Bootstrap',
  );

  // Stop taking jobs at once, let the sends in progress finish (up to SHUTDOWN_GRACE_PERIOD),
  // delete their outbox rows, close the pools, exit 0. Jobs not started stay queued for the other
  // workers (or the next start). Past the grace period, hand the sends in progress back, exit 1.
  onShutdownSignals(logger, {
    announce: (signal) => `${signal}: shutting down (sends in progress finish; grace period ${config.shutdownGracePeriod} s)`,
    begin: () => app.get(ShutdownState).begin(), // readiness 503 from the first signal
    gracePeriodSeconds: config.shutdownGracePeriod,
    graceOver: 'Grace period over: exiting with sends still in progress',
    abandon: () => app.get(OtpMailWorker).abandon(),
    stop: async () => {
      await app.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  });
}

bootstrap().catch((error: unknown) => {
  if (!(error instanceof StartupError && error.logged)) {
    const oneLine = error instanceof ConfigurationError || error instanceof StartupError;
    process.stderr.write(`${oneLine ? error.message : error instanceof Error ? error.stack : String(error)}\n`);
  }
  process.exit(1);
});
