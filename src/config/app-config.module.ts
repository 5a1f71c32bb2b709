import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { AppConfig, loadAppConfig } from './app-config.js';

/**
 * Validates the environment once at boot (through @nestjs/config) into the typed `AppConfig` and
 * provides it everywhere. A bad value stops the start with a message naming the variable. `.env`
 * is loaded into `process.env` by the entry points (`main.ts`, `migrate.ts`, via `loadDotEnv`), so
 * one parser reads it and the early check in `main.ts` sees exactly what the app sees.
 */
@Global()
@Module({})
export class AppConfigModule {
  /** @param env use exactly these variables instead of `process.env` (tests) */
  static register(env?: Record<string, string | undefined>): DynamicModule {
    const config = ConfigModule.forRoot({
      ignoreEnvFile: true,
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
