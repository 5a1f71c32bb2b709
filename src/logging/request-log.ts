import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { routeOf } from '../http/route-of.js';

/** Longest path written to a log line. */
const PATH_MAX = 512;

/**
 * Echoes the request id (`X-Request-Id`, see http-adapter.ts) on every answer and writes one access
 * line per request once the answer is sent: request id, method, path (no query string), route
 * pattern, status and duration (ms, to 0.1); at `error` level for 5xx, `info` otherwise. Headers are never
 * logged, so tokens and cookies cannot reach the log.
 */
export function registerRequestLog(fastify: FastifyInstance, logger: Logger): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('X-Request-Id', request.id);
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const level = reply.statusCode >= 500 ? 'error' : 'info';
    if (logger.isLevelEnabled(level)) {
      logger[level](
        {
          req: { id: request.id, method: request.method, path: request.url.split('?')[0].slice(0, PATH_MAX) },
          res: { statusCode: reply.statusCode },
          responseTime: Math.round(reply.elapsedTime * 10) / 10,
          route: routeOf(request),
        },
        'request completed',
      );
    }
    done();
  });
}
