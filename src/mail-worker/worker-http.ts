import { createServer, type Server } from 'node:http';
import { ApiError } from '../common/api-error.js';
import type { ReadinessService } from '../health/readiness.service.js';
import type { MetricsService } from '../metrics/metrics.service.js';

const PATHS = ['/health/live', '/health/ready', '/metrics'];

/**
 * The mail worker process's HTTP endpoints (node:http; there is no API here):
 * `GET /health/live` (200 `{"status":"ok"}` while the process runs, for the image's HEALTHCHECK
 * and a liveness probe), `GET /health/ready` (as the service's: 200 while PostgreSQL answers within
 * 2 s; 503 `database_unavailable`, or `shutting_down` from the first SIGTERM/SIGINT) and
 * `GET /metrics` (Prometheus text: `mails_sent_total`, `mails_failed_total`,
 * `mail_send_errors_total`, `mail_queue_depth` and the process metrics).
 * Anything else is a 404; a method other than GET or HEAD a 405.
 */
export function createWorkerHttpServer(metrics: MetricsService, readiness: ReadinessService): Server {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    const json = (status: number, value: unknown, headers?: Record<string, string>) =>
      send(status, 'application/json; charset=utf-8', JSON.stringify(value), headers);
    if (!PATHS.includes(path)) {
      json(404, { error: 'not_found', message: 'The mail worker serves GET /health/live, GET /health/ready and GET /metrics only.' });
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      json(405, { error: 'method_not_allowed', message: `${path} answers GET and HEAD only.` }, { Allow: 'GET, HEAD' });
      return;
    }
    if (path === '/health/live') {
      json(200, { status: 'ok' });
      return;
    }
    if (path === '/health/ready') {
      readiness.check('The mail worker').then(
        (result) => json(200, result),
        (error: unknown) =>
          error instanceof ApiError
            ? json(error.status, error.body(), error.headers)
            : json(500, { error: 'internal_error', message: `readiness check failed: ${error instanceof Error ? error.message : String(error)}` }),
      );
      return;
    }
    metrics.registry.metrics().then(
      (text) => send(200, 'text/plain; version=0.0.4; charset=utf-8', text),
      (error: unknown) => send(500, 'text/plain; charset=utf-8', `metrics failed: ${error instanceof Error ? error.message : String(error)}\n`),
    );
  });
  server.keepAliveTimeout = 5_000;
  return server;
}

/**
 * Listens on `port` of `host`: null or `::` means every IPv6 and IPv4 address (IPv4 only where IPv6
 * is off), as the service does.
 */
export async function listenWorkerHttp(server: Server, port: number, host: string | null): Promise<void> {
  const listen = (address: string) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => {
        server.off('error', reject);
        resolve();
      });
    });
  if (host !== null && host !== '::') return listen(host);
  try {
    await listen('::');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw error;
    await listen('0.0.0.0');
  }
}
