import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../common/api-error.js';
import { isDatabaseUnavailable } from '../database/database-errors.js';
import { bodyReadError } from './json-body.js';

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  503: 'service_unavailable',
};

/**
 * The one place errors become HTTP responses: `{"statusCode","error","code","message", ...}`.
 * ApiErrors keep their code and details; other HttpExceptions, and Fastify's errors for bodies it
 * could not read, get a code from their status; anything else is logged with the request id and
 * answered with a generic 500 (no stack or SQL leaves the process).
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('ApiExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const context = host.switchToHttp();
    const reply = context.getResponse<FastifyReply>();
    const request = context.getRequest<FastifyRequest>();
    const error = this.toApiError(exception, request);
    if (reply.sent) return;
    reply.headers(error.headers);
    reply.status(error.status).send(error.body());
  }

  private toApiError(exception: unknown, request: FastifyRequest): ApiError {
    if (exception instanceof ApiError) return exception;
    const path = request.url.split('?')[0];
    if (exception instanceof HttpException) {
      // Nest's Fastify adapter wraps Fastify's body errors (413 over the limit, …) in an
      // HttpException carrying Fastify's wording: answer them in ours, as when they arrive unwrapped.
      const unreadableBody = bodyReadError(exception.cause ?? {});
      if (unreadableBody) return unreadableBody;
      const status = exception.getStatus();
      const message = status === 404 ? `No route for ${request.method} ${path}.` : exception.message;
      return new ApiError(status, CODE_BY_STATUS[status] ?? 'error', message);
    }
    const unreadable = bodyReadError(exception);
    if (unreadable) return unreadable;
    if (isDatabaseUnavailable(exception)) {
      this.logger.warn(`Database unavailable on ${request.method} ${path} (request ${request.id}): ${String(exception)}`);
      return new ApiError(503, 'database_unavailable', 'The database is not reachable right now; try again shortly.', {}, {
        'Retry-After': '5',
      });
    }
    this.logger.error(
      `Unhandled error on ${request.method} ${path} (request ${request.id})`,
      exception instanceof Error ? exception.stack : String(exception),
    );
    return new ApiError(500, 'internal_error', 'Something went wrong on our side.');
  }
}
