import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import { configureApp } from './app.setup.js';
import { AppConfig, loadAppConfig } from './config/app-config.js';
import { useDevelopmentSecret, warnAboutAppSecret } from './config/development-secret.js';
import { loadDotEnv } from './config/dotenv.js';
import { StartupError } from './common/startup-error.js';
import { onShutdownSignals } from './common/shutdown-signals.js';
import { ConfigurationError } from './config/environment.js';
import { EmbeddedDatabaseHolder } from './database/database.module.js';
import { ShutdownState } from './health/shutdown-state.js';
import { createHttpAdapter } from './http/http-adapter.js';
import { describeListenAddress } from './http/listen-address.js';
import { assertPortAvailable } from './http/port-check.js';
import { OtpMailWorker } from './mail/otp-mail.worker.js';

async function bootstrap(): Promise<void> {
  // Fail fast, in one readable message, before Nest starts logging (the app reads it again, validated).
  loadDotEnv();
  const developmentSecret = useDevelopmentSecret(process.env);
  const early = loadAppConfig(process.env);
  // Before the database is started and migrated: a port in use is one line naming PORT.
  await assertPortAvailable(early.port, early.host);

  const app = await NestFactory.create<NestFastifyApplication>(AppModule.register(), createHttpAdapter(early), {
    bodyParser: false, // JSON bodies only: http/json-body.ts
    bufferLogs: true,
    abortOnError: false, // let bootstrap() report start-up errors (a configuration error in one line)
    // A failed start prints bootstrap()'s one line, not Nest's buffered text log and stack trace;
    // the buffer goes to pino once the app exists (flushLogs below).
    autoFlushLogs: false,
  });
  const logger = app.get(Logger);
  app.useLogger(logger);
  app.flushLogs();
  const config = app.get(AppConfig);
  const embedded = app.get(EmbeddedDatabaseHolder);
  await configureApp(app);
  warnAboutAppSecret(logger, developmentSecret, config.appSecretGenerated, '');
  // `::` (the Docker image's HOST) also falls back to IPv4 where IPv6 is off.
  if (config.host === null || config.host === '::') await listenOnAllAddresses(app, config.port);
  else await app.listen(config.port, config.host);
  const listen = describeListenAddress(config.host, config.port);
  logger.log(
    `Listening on ${listen.url} (${listen.bound}, NODE_ENV=${config.nodeEnv})`,
    'Bootstrap',
  );

  // Readiness answers 503 at once; new connections are still accepted and served for
  // SHUTDOWN_DELAY seconds, so that a load balancer stops sending first (the Kubernetes pattern);
  // then the listener closes, requests in flight finish, the jobs stop, the pools close, the
  // embedded PostgreSQL stops, exit 0. Past the grace period, hand the mail sends in progress back
  // to the queue and exit 1 without waiting further.
  const shutdownState = app.get(ShutdownState);
  onShutdownSignals(logger, {
    announce: (signal) =>
      `${signal}: shutting down (readiness 503; serving ${config.shutdownDelay} s more, then grace period ${config.shutdownGracePeriod} s)`,
    begin: () => shutdownState.begin(),
    delaySeconds: config.shutdownDelay,
    gracePeriodSeconds: config.shutdownGracePeriod,
    graceOver: 'Grace period over: exiting with requests or mail sends still in progress',
    abandon: () => app.get(OtpMailWorker).abandon(), // mail sends in progress (MAIL_WORKER=inline)
    stop: async () => {
      // Keep-alive connections of requests in flight become idle once answered: close them then,
      // instead of waiting for the keep-alive timeout.
      const server = app.getHttpServer();
      setInterval(() => server.closeIdleConnections(), 100).unref();
      const drainStarted = Date.now();
      const hadEmbedded = embedded.embedded !== null;
      await app.close();
      logger.log(`Closed in ${Date.now() - drainStarted} ms: no request open, mail ${config.mail.worker === 'inline' ? 'worker' : 'relay'} stopped, database connections closed`, 'Bootstrap');
      await embedded.stop();
      if (hadEmbedded) logger.log('Embedded PostgreSQL stopped', 'Bootstrap');
    },
  });
}

/** Every IPv6 and IPv4 address, as Node's `server.listen(port)` does; IPv4 only where IPv6 is off. */
async function listenOnAllAddresses(app: NestFastifyApplication, port: number): Promise<void> {
  try {
    await app.listen(port, '::');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT' && (error as NodeJS.ErrnoException).code !== 'EADDRNOTAVAIL') throw error;
    await app.listen(port, '0.0.0.0');
  }
}

bootstrap().catch((error: unknown) => {
  if (!(error instanceof StartupError && error.logged)) {
    const oneLine = error instanceof ConfigurationError || error instanceof StartupError;
    process.stderr.write(`${oneLine ? error.message : error instanceof Error ? error.stack : String(error)}\n`);
  }
  process.exit(1);
});
