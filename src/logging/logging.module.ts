import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { type DestinationStream, destination } from 'pino';
import { AppConfig } from '../config/app-config.js';

/** Header values that must never reach a log line (bearer tokens, cookies). */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
];

/**
 * JSON logs through pino: the application's logs (nestjs-pino's Logger), pretty-printed in
 * development, secrets redacted. The access log (one line per request) is written by the request
 * hook of `request-log.ts` through the same logger; nestjs-pino mounts no per-request middleware.
 */
@Module({})
export class LoggingModule {
  /** @param stream where log lines go instead of stdout (tests read them) */
  static register(stream?: DestinationStream): DynamicModule {
    return {
      module: LoggingModule,
      imports: [
        LoggerModule.forRootAsync({
          inject: [AppConfig],
          useFactory: (config: AppConfig) => {
            const options = {
              level: config.logLevel,
              redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
              // request-log.ts writes `req` and `res` already reduced to what may be logged: not
              // through pino-http's request/response serializers.
              wrapSerializers: false,
              transport:
                config.nodeEnv === 'development' && !stream
                  ? { target: 'pino-pretty', options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l' } }
                  : undefined,
            };
            // Outside development, stdout written synchronously (pino's `destination({ sync: true })`):
            // pino's default writes asynchronously, and the `process.exit` at the end of a shutdown
            // then wrote its last line before the one logged just earlier.
            const out = stream ?? (options.transport ? undefined : destination({ dest: 1, sync: true }));
            return { pinoHttp: out ? [options, out] : options, forRoutes: [] };
          },
        }),
      ],
    };
  }
}
