import { Inject, Injectable, type MiddlewareConsumer, Module, type NestModule, type OnApplicationShutdown } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { Redis } from 'ioredis';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import { ApiError } from '../common/api-error.js';
import { AppConfig } from '../config/app-config.js';
import { SessionsController } from '../sessions/sessions.controller.js';

const WINDOW_MS = 60_000;

/**
 * Longest wait for Redis on one command. Without it a Redis that accepts connections but does not
 * answer (hung, or a black-holed network) would hold every session request forever; with it the
 * command fails and `passOnStoreError` lets the request through.
 */
const REDIS_COMMAND_TIMEOUT_MS = 500;

/**
 * Per-client-IP request limit of the session endpoints: RATE_LIMIT_PER_MINUTE requests per minute
 * (express-rate-limit), counted in memory, or in Redis (rate-limit-redis) when REDIS_URL is set so
 * that every replica shares one count. The client IP is Express's `req.ip`, which believes
 * X-Forwarded-For only as far as TRUST_PROXY allows.
 *
 * If Redis cannot be reached, or does not answer within REDIS_COMMAND_TIMEOUT_MS, the request is let
 * through (`passOnStoreError`): the per-device, per-email and attempt limits live in PostgreSQL and
 * still hold.
 */
@Injectable()
export class SessionRateLimiter implements OnApplicationShutdown {
  readonly middleware: RequestHandler | null;
  private readonly redis: Redis | null;

  constructor(@Inject(AppConfig) config: AppConfig) {
    const { perMinute, redisUrl } = config.rateLimit;
    this.redis = perMinute > 0 && redisUrl ? new Redis(redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: REDIS_COMMAND_TIMEOUT_MS }) : null;
    const redis = this.redis;
    this.middleware =
      perMinute === 0
        ? null
        : rateLimit({
            windowMs: WINDOW_MS,
            limit: perMinute,
            standardHeaders: 'draft-7',
            legacyHeaders: false,
            passOnStoreError: true,
            // X-Forwarded-For is deliberately ignored unless TRUST_PROXY says otherwise.
            validate: { xForwardedForHeader: false, trustProxy: false },
            store: redis
              ? new RedisStore({
                  prefix: 'sessions:rl:',
                  sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
                })
              : undefined,
            handler: (req: Request, _res: Response, next: NextFunction) => {
              const resetTime = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
              const retryAfter = Math.max(1, Math.ceil(((resetTime?.getTime() ?? Date.now() + WINDOW_MS) - Date.now()) / 1000));
              next(
                new ApiError(
                  429,
                  'rate_limited',
                  `Too many requests from this address; retry in ${retryAfter} s.`,
                  { retry_after: retryAfter },
                  { 'Retry-After': String(retryAfter) },
                ),
              );
            },
          });
  }

  onApplicationShutdown(): void {
    this.redis?.disconnect();
  }
}

@Module({ providers: [SessionRateLimiter] })
export class RateLimitModule implements NestModule {
  constructor(private readonly limiter: SessionRateLimiter) {}

  configure(consumer: MiddlewareConsumer): void {
    if (this.limiter.middleware) consumer.apply(this.limiter.middleware).forRoutes(SessionsController);
  }
}
