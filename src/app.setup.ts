import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { PinoLogger } from 'nestjs-pino';
import { AppConfig } from './config/app-config.js';
import { ApiExceptionFilter } from './http/api-exception.filter.js';
import { registerJsonBodies } from './http/json-body.js';
import { setupOpenApi } from './http/openapi.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import { registerRequestLog } from './logging/request-log.js';
import { MetricsService } from './metrics/metrics.service.js';
import { SessionRateLimiter } from './rate-limit/rate-limit.module.js';
import { registerWebUi } from './web-ui/web-ui.js';

/**
 * HTTP settings shared by `main.ts` and the tests, so that tests exercise the real stack. Hooks run
 * in this order on every request: security headers, request id, per-IP limit, JSON body checks.
 * Call before `app.init()`: Fastify gives routes the hooks that exist when they are registered.
 */
export async function configureApp(app: NestFastifyApplication): Promise<NestFastifyApplication> {
  const config = app.get(AppConfig);
  const fastify = app.getHttpAdapter().getInstance();
  // No upgrade-insecure-requests: it would break /docs served over plain HTTP (development, internal).
  registerSecurityHeaders(fastify, { contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } });
  if (config.corsOrigins.length > 0) {
    app.enableCors({
      origin: config.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
      exposedHeaders: ['Retry-After', 'X-Request-Id', 'RateLimit', 'RateLimit-Policy'],
      maxAge: 600,
      strictPreflight: false, // an OPTIONS without preflight headers is answered, not refused with a text 400
    });
  }
  registerRequestLog(fastify, PinoLogger.root);
  app.get(MetricsService).registerHttpHooks(fastify);
  await app.get(SessionRateLimiter).register(fastify); // before the body checks: refused bodies count too
  registerJsonBodies(fastify);
  app.useGlobalFilters(new ApiExceptionFilter());
  setupOpenApi(app);
  if (config.webUi) await registerWebUi(app);
  return app;
}
