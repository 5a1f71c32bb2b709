import { Module, type DynamicModule } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import type { DestinationStream } from 'pino';
import { CommonModule } from './common/common.module.js';
import { AppConfigModule } from './config/app-config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { LoggingModule } from './logging/logging.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { RateLimitModule } from './rate-limit/rate-limit.module.js';
import { SessionsModule } from './sessions/sessions.module.js';

export interface AppModuleOptions {
  /** Exact environment to use instead of `.env` + `process.env` (tests). */
  env?: Record<string, string | undefined>;
  /** Where log lines go instead of stdout (tests). */
  logStream?: DestinationStream;
}

@Module({})
export class AppModule {
  static register(options: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.register(options.env),
        LoggingModule.register(options.logStream),
        ScheduleModule.forRoot(),
        CommonModule,
        MetricsModule,
        DatabaseModule,
        RateLimitModule,
        HealthModule,
        SessionsModule,
      ],
    };
  }
}
