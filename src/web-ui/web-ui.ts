import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigurationError } from '../config/environment.js';

/**
 * The sign-in and "my devices" page (issue #14): `public/index.html` at `/`, its script, style
 * sheet and icon under `/web/`. Plain files, no build step: `nest build` copies `public/` next to
 * this module (nest-cli.json `assets`), and the tests read it from `src/`.
 */
export const WEB_UI_ROOT = fileURLToPath(new URL('./public/', import.meta.url));

/** URL prefix of the page's script, style sheet and icon. */
export const WEB_UI_ASSETS = '/web/';

/**
 * The page's Content-Security-Policy, stricter than the one helmet sends for the API and /docs
 * (which lets Swagger UI use inline styles): only this origin's scripts, styles, images and fetch
 * calls, no inline code of any kind (CSP Level 3; OWASP "Content Security Policy Cheat Sheet"),
 * no framing, no <base>, forms only to this origin.
 */
export const WEB_UI_CSP_DIRECTIVES = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  scriptSrcAttr: ["'none'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  connectSrc: ["'self'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  objectSrc: ["'none'"],
};

/**
 * Registers `GET /` (the page; `Cache-Control: no-store`, so a new release is picked up at once)
 * and `GET /web/*` (its assets through @fastify/static; `no-cache`: revalidated with ETag /
 * Last-Modified on every load, answered 304 when unchanged, since their names carry no version).
 * Unknown files under /web/ fall through to the app's JSON 404.
 * @throws ConfigurationError when the page's files are not beside this module (a build without assets)
 */
export async function registerWebUi(app: NestFastifyApplication): Promise<void> {
  if (!existsSync(`${WEB_UI_ROOT}index.html`)) {
    // A build by plain `tsc` copies no assets: say so at start rather than answer 404 later.
    throw new ConfigurationError(
      `WEB_UI is on but ${WEB_UI_ROOT}index.html is missing: build with \`npm run build\` (it copies src/web-ui/public), or set WEB_UI=false.`,
    );
  }
  const page = readFileSync(`${WEB_UI_ROOT}index.html`);
  const fastify = app.getHttpAdapter().getInstance();
  fastify.get(
    '/',
    { config: { securityHeaders: { contentSecurityPolicy: { useDefaults: false, directives: WEB_UI_CSP_DIRECTIVES } } } },
    (_request, reply) => {
      void reply.header('Cache-Control', 'no-store').type('text/html; charset=utf-8').send(page);
    },
  );
  await app.register(fastifyStatic, {
    root: WEB_UI_ROOT,
    prefix: WEB_UI_ASSETS,
    decorateReply: false, // reply.sendFile is not used; left free for another registration
    index: false,
    cacheControl: false,
    setHeaders: (reply) => void reply.header('Cache-Control', 'no-cache'),
  });
}
