import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { AppConfig, loadAppConfig } from './app-config.js';

/**
 * Reads `.env` and the environment once at boot (through @nestjs/config), validates them into the
 * typed `AppConfig` and provides it everywhere. A bad value stops the start with a message naming
 * the variable.
 */
@Global()
@Module({})
export class AppConfigModule {
  /** @param env use exactly these variables instead of `.env` and `process.env` (tests) */
  static register(env?: Record<string, string | undefined>): DynamicModule {
    return {
      module: AppConfigModule,
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: env !== undefined,
          validate: (loaded) => ({ app: loadAppConfig(env ?? loaded) }),
        }),
      ],
      providers: [
        { provide: AppConfig, inject: [ConfigService], useFactory: (config: ConfigService) => config.getOrThrow('app') },
      ],
      exports: [AppConfig],
    };
  }
}
