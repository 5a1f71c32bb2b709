import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';

/** What a route may set in its `config` to answer with other helmet options than every other route. */
export interface SecurityHeadersRouteConfig {
  /** helmet's options for this route, instead of the global ones (helmet's defaults for what they leave out). */
  securityHeaders?: HelmetOptions;
}

/**
 * helmet's security headers (Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options…)
 * on every answer, 404s included, through helmet's documented Node middleware `helmet(options)(req,
 * res, next)`, built once per set of options. (@fastify/helmet 13 builds a new helmet middleware,
 * parsing the CSP directives again, for every request: 4 % of a token check's CPU.)
 */
export function registerSecurityHeaders(fastify: FastifyInstance, options: HelmetOptions): void {
  const everyRoute = helmet(options);
  const ofRoute = new WeakMap<HelmetOptions, ReturnType<typeof helmet>>();
  const middlewareFor = (own: HelmetOptions | undefined) => {
    if (!own) return everyRoute;
    let middleware = ofRoute.get(own);
    if (!middleware) {
      middleware = helmet(own);
      ofRoute.set(own, middleware);
    }
    return middleware;
  };
  fastify.addHook('onRequest', (request, reply, done) => {
    const own = (request.routeOptions.config as SecurityHeadersRouteConfig | undefined)?.securityHeaders;
    middlewareFor(own)(request.raw, reply.raw, (error) => done(error as Error | undefined));
  });
}
