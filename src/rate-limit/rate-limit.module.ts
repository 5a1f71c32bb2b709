import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import { Inject, Injectable, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { ApiError } from '../common/api-error.js';
import { AppConfig } from '../config/app-config.js';
import { clientIp } from '../http/client-ip.js';
import { routeOf } from '../http/route-of.js';

const WINDOW_MS = 60_000;

/**
 * Longest wait for Redis on one command. Without it a Redis that accepts connections but does not
 * answer (hung, or a black-holed network) would hold every session request forever; with it the
 * command fails and `skipOnError` lets the request through.
 */
const REDIS_COMMAND_TIMEOUT_MS = 500;

/** Redis connection errors are logged at most this often (ioredis reports every reconnect attempt). */
const REDIS_ERROR_LOG_INTERVAL_MS = 60_000;

/** Key prefix of the counters in Redis. */
export const RATE_LIMIT_NAMESPACE = 'sessions:rl:';

/** IPv6 clients are counted per /56, the usual size of one customer's allocation. */
export const RATE_LIMIT_IPV6_SUBNET = 56;

/**
 * Per-client-IP request limit of the session endpoints: RATE_LIMIT_PER_MINUTE requests per fixed
 * one-minute window (@fastify/rate-limit), counted in memory, or in Redis when REDIS_URL is set so
 * that every replica shares one count. The client is `clientIp()`: X-Forwarded-For only as far as
 * TRUST_PROXY allows, and only an IP address. Answers carry `RateLimit` and
 * `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-07); a refusal is 429 `rate_limited`
 * with `Retry-After`.
 *
 * If Redis cannot be reached, or does not answer within REDIS_COMMAND_TIMEOUT_MS, the request is let
 * through (`skipOnError`; logged at most once a minute): the per-device, per-email and attempt
 * limits live in PostgreSQL and still hold.
 */
@Injectable()
export class SessionRateLimiter implements OnApplicationShutdown {
  private readonly logger = new Logger(SessionRateLimiter.name);
  private readonly redis: Redis | null;
  private lastErrorLoggedAt = 0;

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {
    const { perMinute, redisUrl } = config.rateLimit;
    // No offline queue: while Redis is unreachable a count fails at once (and the request passes)
    // instead of waiting for the command time-out.
    this.redis =
      perMinute > 0 && redisUrl
        ? new Redis(redisUrl, {
            maxRetriesPerRequest: 1,
            connectTimeout: 2_000,
            commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
            enableOfflineQueue: false,
          })
        : null;
    this.redis?.on('error', (error: Error) => {
      if (Date.now() - this.lastErrorLoggedAt < REDIS_ERROR_LOG_INTERVAL_MS) return;
      this.lastErrorLoggedAt = Date.now();
      this.logger.warn(`Redis for the per-IP limit: ${error.message}; requests pass uncounted until it is back`);
    });
  }

  /** Installs the limit as an `onRequest` hook of the `/sessions` routes (before the body is read). */
  async register(fastify: FastifyInstance): Promise<void> {
    const max = this.config.rateLimit.perMinute;
    if (max === 0) return;
    await fastify.register(rateLimit, {
      global: false,
      max,
      timeWindow: WINDOW_MS,
      keyGenerator: (request) => normalizeIP(clientIp(request), RATE_LIMIT_IPV6_SUBNET),
      skipOnError: true,
      ...(this.redis ? { redis: this.redis, nameSpace: RATE_LIMIT_NAMESPACE } : {}),
    });
    const check = fastify.createRateLimit();
    const policy = `${max};w=${WINDOW_MS / 1000}`;
    fastify.addHook('onRequest', async (request, reply) => {
      if (!routeOf(request).startsWith('/sessions')) return;
      const limit = await check(request);
      // ttl 0: the store failed (skipOnError) and nothing was counted, so there is nothing to report.
      if (limit.isAllowed || limit.ttl === 0) return;
      const reset = Math.max(1, limit.ttlInSeconds);
      reply.header('RateLimit-Policy', policy);
      reply.header('RateLimit', `limit=${max}, remaining=${limit.remaining}, reset=${reset}`);
      if (!limit.isExceeded) return;
      throw new ApiError(429, 'rate_limited', `Too many requests from this address; retry in ${reset} s.`, { retry_after: reset }, {
        'Retry-After': String(reset),
      });
    });
  }

  onApplicationShutdown(): void {
    this.redis?.disconnect();
  }
}

@Module({ providers: [SessionRateLimiter], exports: [SessionRateLimiter] })
export class RateLimitModule {}
