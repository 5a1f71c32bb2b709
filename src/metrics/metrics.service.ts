import { Injectable } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { routeOf } from '../http/route-of.js';

/**
 * The service's Prometheus metrics (prom-client), in a registry of its own per application
 * instance. Counters never carry secrets or ids as labels.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly sessionsCreated = this.counter('sessions_created_total', 'Pending sessions created (code emailed)', ['device_type']);
  readonly sessionsReused = this.counter('sessions_reused_total', 'POST /sessions answered with the caller\'s own session');
  readonly sessionsConfirmed = this.counter('sessions_confirmed_total', 'Sessions confirmed with their code', ['device_type']);
  readonly sessionsExpired = this.counter('sessions_expired_total', 'Sessions that became expired, by reason', ['reason']);
  readonly sessionsRevoked = this.counter('sessions_revoked_total', 'Sessions revoked, by cause', ['cause']);
  readonly otpFailures = this.counter('otp_failures_total', 'Wrong codes submitted');
  readonly rateLimited = this.counter('rate_limited_requests_total', 'Requests answered 429', ['route']);
  readonly mailsSent = this.counter('mails_sent_total', 'Login emails handed to the SMTP server (or the dev log)');
  readonly mailsFailed = this.counter('mails_failed_total', 'Login emails given up on (rejected, or code expired first)');
  readonly mailSendErrors = this.counter('mail_send_errors_total', 'Failed SMTP attempts, including those retried later');

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Exposes `mail_queue_depth`: mails waiting to be sent (read at scrape time). */
  registerMailQueueDepth(read: () => Promise<number>): void {
    this.registry.removeSingleMetric('mail_queue_depth');
    new Gauge({
      name: 'mail_queue_depth',
      help: 'Login emails queued and not yet sent',
      registers: [this.registry],
      async collect() {
        this.set(await read().catch(() => Number.NaN));
      },
    });
  }

  /** Times every response (route pattern, not raw path, as label) and counts the 429s. */
  registerHttpHooks(fastify: FastifyInstance): void {
    fastify.addHook('onResponse', (request, reply, done) => {
      const route = routeOf(request);
      const status = reply.statusCode;
      this.httpDuration.observe({ method: request.method, route, status: String(status) }, reply.elapsedTime / 1000);
      if (status === 429) this.rateLimited.inc({ route });
      done();
    });
  }

  private counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}
