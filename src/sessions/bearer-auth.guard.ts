import { type CanActivate, createParamDecorator, type ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Session } from './entities/session.entity.js';
import { SessionAccessService } from './session-access.service.js';
import { bearerOf } from './bearer-token.guard.js';

type AuthenticatedRequest = FastifyRequest & { session?: Session };

/** Lets a request through only with the bearer token of a confirmed, unexpired session (RFC 6750). */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  constructor(private readonly access: SessionAccessService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    request.session = await this.access.authenticate(bearerOf(request));
    return true;
  }
}

/** The session the BearerAuthGuard authenticated. */
export const CurrentSession = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Session =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().session!,
);
