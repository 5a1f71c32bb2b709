import 'reflect-metadata';
import { ConsoleLogger, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { configureApp } from './app.setup.js';
import { AppConfig } from './config/app-config.js';
import { ConfigurationError } from './config/environment.js';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(), {
    bodyParser: false,
    bufferLogs: true,
  });
  const config = app.get(AppConfig);
  app.useLogger(new ConsoleLogger({ logLevels: LEVELS.slice(0, LEVELS.indexOf(config.logLevel) + 1) }));
  configureApp(app);
  const logger = new ConsoleLogger('Bootstrap');
  if (config.appSecretGenerated) {
    logger.warn('APP_SECRET is not set: using a random one for this process (codes and sessions do not survive a restart of other replicas).');
  }
  await app.listen(config.port);
  logger.log(`Listening on http://localhost:${config.port} (NODE_ENV=${config.nodeEnv})`);
}

bootstrap().catch((error: unknown) => {
  process.stderr.write(`${error instanceof ConfigurationError ? error.message : error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
