import { type DynamicModule, Module } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream, Level } from 'pino';
import { AppConfig } from '../config/app-config.js';

/** Header values that must never reach a log line (bearer tokens, cookies). */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
];

const PINO_LEVEL: Record<AppConfig['logLevel'], Level> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** `X-Request-Id` from the client when it looks like an id, otherwise a new UUID; echoed back. */
function requestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

/**
 * The matched route pattern (e.g. `/sessions/:uuid`), so that ids do not explode label sets.
 * `unmatched` when no endpoint matched: the only pattern seen then is the catch-all (`{/*splat}`)
 * under which the request logger and the body parser are mounted. A middleware mounted on an
 * endpoint (the rate limiter) sees its pattern with a trailing slash, which is dropped.
 */
export function routeOf(req: IncomingMessage): string {
  const { route, baseUrl } = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };
  if (typeof route?.path !== 'string' || !route.path || route.path.includes('*')) return 'unmatched';
  return `${baseUrl ?? ''}${route.path}`.replace(/(?<=.)\/+$/, '');
}

/**
 * JSON logs through pino (nestjs-pino): one line per request with method, route, status, duration
 * and request id; pretty-printed in development; secrets redacted.
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
              level: PINO_LEVEL[config.logLevel],
              genReqId: requestId,
              redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
              serializers: {
                req: (req: { id: string; method: string; url: string }) => ({
                  id: req.id,
                  method: req.method,
                  path: req.url.split('?')[0].slice(0, 512),
                }),
                res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
              },
              customSuccessObject: (req: IncomingMessage, _res: ServerResponse, value: object) => ({
                ...value,
                route: routeOf(req),
              }),
              customErrorObject: (req: IncomingMessage, _res: ServerResponse, _error: Error, value: object) => ({
                ...value,
                route: routeOf(req),
              }),
              customLogLevel: (_req: IncomingMessage, res: ServerResponse, error?: Error) =>
                error || res.statusCode >= 500 ? 'error' : 'info',
              transport:
                config.nodeEnv === 'development' && !stream
                  ? { target: 'pino-pretty', options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l' } }
                  : undefined,
            };
            return { pinoHttp: stream ? [options, stream] : options };
          },
        }),
      ],
    };
  }
}
