import { normalizeIP } from '@fastify/rate-limit';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RATE_LIMIT_IPV6_SUBNET, RATE_LIMIT_NAMESPACE } from '../../src/rate-limit/rate-limit.module.js';

/**
 * Redis for the tests of the shared per-IP limit: only when TEST_REDIS_URL names one (CI sets it
 * when a Redis answers); `npm test` on a machine with only Node.js and npm skips those tests.
 */
export const TEST_REDIS_URL: string | undefined = process.env.TEST_REDIS_URL || undefined;


/**
 * A client IP (an IPv6 address from the documentation range 2001:db8::/32, sent as
 * X-Forwarded-For with TRUST_PROXY) that no other test or run uses: its own /56, so its own
 * rate-limit key, which the tests delete before and after (and nothing else).
 */
export function uniqueClientIp(): string {
  const [a, b, c] = randomBytes(3);
  return `2001:db8:${((a << 8) | b).toString(16)}:${c.toString(16)}00::1`;
}

/** The Redis key the limiter counts `ip` under (@fastify/rate-limit's own key function: /56 for IPv6). */
export function rateLimitKey(ip: string): string {
  return RATE_LIMIT_NAMESPACE + normalizeIP(ip, RATE_LIMIT_IPV6_SUBNET);
}

/** A client for assertions on, and clean-up of, this test's own keys. */
export function connectTestRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
}
