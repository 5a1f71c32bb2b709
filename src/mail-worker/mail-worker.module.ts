import { Inject, Injectable, Module, type DynamicModule, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { DestinationStream } from 'pino';
import { CommonModule } from '../common/common.module.js';
import { AppConfigModule } from '../config/app-config.module.js';
import { DatabaseModule } from '../database/database.module.js';
import { ReadinessModule } from '../health/readiness.module.js';
import { LoggingModule } from '../logging/logging.module.js';
import { MailSendingModule } from '../mail/mail.module.js';
import { OtpMailRelay, RELAY_POLL_INTERVAL_MS } from '../mail/otp-mail.relay.js';
import { OtpMailWorker } from '../mail/otp-mail.worker.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { MetricsService } from '../metrics/metrics.service.js';

/**
 * How often the mail worker process looks for outbox rows that no service replica handed over
 * (ms). The service replicas hand over their own logins' mails 5 ms after the commit (OtpMailRelay,
 * woken by the login); this poll only catches what they left, e.g. a replica that stopped between
 * a commit and its relay pass while no other replica ran.
 */
export const WORKER_RELAY_POLL_MS = RELAY_POLL_INTERVAL_MS;

/** Starts the mail worker process's sending (graphile-worker's runner) and relay poll, and stops them. */
@Injectable()
export class MailWorkerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(OtpMailWorker) private readonly worker: OtpMailWorker,
    @Inject(OtpMailRelay) private readonly relay: OtpMailRelay,
    @Inject(MetricsService) private readonly metrics: MetricsService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.worker.start(); // installs graphile-worker's schema first, which the relay queues into
    this.relay.start(WORKER_RELAY_POLL_MS);
    this.metrics.registerMailQueueDepth(() => this.relay.depth());
  }

  /** Stops the relay, lets the sends in progress finish, deletes their outbox rows, closes the pool. */
  async onApplicationShutdown(): Promise<void> {
    await this.relay.stop();
    await this.worker.stop();
  }
}

export interface MailWorkerModuleOptions {
  /** Exact environment to use instead of `.env` + `process.env` (tests). */
  env?: Record<string, string | undefined>;
  /** Where log lines go instead of stdout (tests). */
  logStream?: DestinationStream;
}

/**
 * The mail worker process (`dist/mail-worker.js`, a Nest application context without HTTP routes):
 * configuration, logging, metrics, the database (migrated at start, like the service) and the
 * mail's sending side, nothing of the API.
 */
@Module({})
export class MailWorkerModule {
  static register(options: MailWorkerModuleOptions = {}): DynamicModule {
    return {
      module: MailWorkerModule,
      imports: [
        AppConfigModule.register(options.env),
        LoggingModule.register(options.logStream),
        CommonModule,
        MetricsModule,
        DatabaseModule,
        MailSendingModule,
        ReadinessModule,
      ],
      providers: [MailWorkerLifecycle],
    };
  }
}
