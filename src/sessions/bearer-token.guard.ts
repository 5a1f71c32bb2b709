import { type CanActivate, createParamDecorator, type ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { parseBearer } from '../security/token.js';
import { SessionErrors } from './session.errors.js';

/**
 * Lets a request through only when it carries `Authorization: Bearer <token>` in RFC 6750 §2.1
 * syntax; whose token it is, and what it may do, is the service's question. Guards run before
 * pipes, so a malformed or missing header answers 401 before the id (400) and the body (400).
 * @throws ApiError 401 `unauthorized` with `WWW-Authenticate: Bearer`
 */
@Injectable()
export class BearerTokenGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (!bearerOf(context.switchToHttp().getRequest<FastifyRequest>())) {
      throw SessionErrors.unauthorized('missing');
    }
    return true;
  }
}

/**
 * The bearer token of the request's `Authorization` header, or null when it is missing, malformed,
 * or sent more than once. Node.js keeps only the first of repeated `Authorization` headers, so the
 * raw header list is counted: two credentials make the request ambiguous, not the first one valid.
 */
export function bearerOf(request: FastifyRequest): string | null {
  const raw = request.raw.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === 13 && raw[i].toLowerCase() === 'authorization') seen++;
  return seen === 1 ? parseBearer(request.headers.authorization) : null;
}

/** The request's bearer token as `bearerOf` reads it (always a token behind BearerTokenGuard). */
export const BearerToken = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string | null => bearerOf(context.switchToHttp().getRequest<FastifyRequest>()),
);
