import { Module, type DynamicModule } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { CommonModule } from './common/common.module.js';
import { AppConfigModule } from './config/app-config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { SessionsModule } from './sessions/sessions.module.js';

@Module({})
export class AppModule {
  /** @param env exact environment to use instead of `.env` + `process.env` (tests) */
  static register(env?: Record<string, string | undefined>): DynamicModule {
    return {
      module: AppModule,
      imports: [AppConfigModule.register(env), ScheduleModule.forRoot(), CommonModule, DatabaseModule, SessionsModule],
    };
  }
}
