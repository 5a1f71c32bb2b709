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
    const config = ConfigModule.forRoot({
      ignoreEnvFile: env !== undefined,
      validate: (loaded) => ({ app: loadAppConfig(env ?? loaded) }),
    });
    // A configuration error rejects this promise before Nest awaits it; mark it handled here so it
    // reaches bootstrap()'s catch as a start-up error instead of crashing as an unhandled rejection.
    config.catch(() => undefined);
    return {
      module: AppConfigModule,
      imports: [config],
      providers: [
        { provide: AppConfig, inject: [ConfigService], useFactory: (config: ConfigService) => config.getOrThrow('app') },
      ],
      exports: [AppConfig],
    };
  }
}
