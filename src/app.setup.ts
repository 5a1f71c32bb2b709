import type { NestExpressApplication } from '@nestjs/platform-express';
import helmet from 'helmet';
import { AppConfig } from './config/app-config.js';
import { ConfigurationError } from './config/environment.js';
import { ApiExceptionFilter } from './http/api-exception.filter.js';
import { setupOpenApi } from './http/openapi.js';
import { MetricsService } from './metrics/metrics.service.js';

/** HTTP settings shared by `main.ts` and the tests, so that tests exercise the real stack. */
export function configureApp(app: NestExpressApplication): NestExpressApplication {
  const config = app.get(AppConfig);
  app.disable('x-powered-by');
  try {
    app.set('trust proxy', config.trustProxy);
  } catch (error) {
    throw new ConfigurationError(`Invalid configuration:\n  TRUST_PROXY: ${error instanceof Error ? error.message : String(error)}`);
  }
  // No upgrade-insecure-requests: it would break /docs served over plain HTTP (development, internal).
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  if (config.corsOrigins.length > 0) {
    app.enableCors({ origin: config.corsOrigins, exposedHeaders: ['Retry-After', 'X-Request-Id', 'RateLimit', 'RateLimit-Policy'], maxAge: 600 });
  }
  app.use(app.get(MetricsService).httpMiddleware());
  // JSON body parsing is module middleware (AppModule), after the request logger.
  app.useGlobalFilters(new ApiExceptionFilter());
  setupOpenApi(app);
  return app;
}
