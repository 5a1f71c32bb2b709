import type { NestExpressApplication } from '@nestjs/platform-express';
import { ApiExceptionFilter } from './http/api-exception.filter.js';
import { jsonBodyMiddleware } from './http/json-body.middleware.js';
import { setupOpenApi } from './http/openapi.js';
import { MetricsService } from './metrics/metrics.service.js';

/** HTTP settings shared by `main.ts` and the tests, so that tests exercise the real stack. */
export function configureApp(app: NestExpressApplication): NestExpressApplication {
  app.disable('x-powered-by');
  app.use(app.get(MetricsService).httpMiddleware());
  app.use(jsonBodyMiddleware);
  app.useGlobalFilters(new ApiExceptionFilter());
  setupOpenApi(app);
  return app;
}
