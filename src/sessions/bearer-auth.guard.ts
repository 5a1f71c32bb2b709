import { type CanActivate, createParamDecorator, type ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { parseBearer } from '../security/token.js';
import { SessionAccessService } from './session-access.service.js';
import type { SessionRecord } from './sessions.repository.js';

type AuthenticatedRequest = FastifyRequest & { session?: SessionRecord };

/** Lets a request through only with the bearer token of a confirmed, unexpired session (RFC 6750). */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  constructor(private readonly access: SessionAccessService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    request.session = await this.access.authenticate(parseBearer(request.headers.authorization));
    return true;
  }
}

/** The session the BearerAuthGuard authenticated. */
export const CurrentSession = createParamDecorator(
  (_data: unknown, context: ExecutionContext): SessionRecord =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().session!,
);
