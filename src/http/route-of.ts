import type { FastifyRequest } from 'fastify';

/**
 * The matched route pattern (e.g. `/sessions/:uuid`), so that ids do not explode label sets;
 * `unmatched` when no endpoint matched (404).
 */
export function routeOf(request: FastifyRequest): string {
  return (!request.is404 && request.routeOptions.url) || 'unmatched';
}
