import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

/** The OpenAPI 3 document, built from the decorators next to each endpoint. */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Session Management API')
    .setDescription(
      'Passwordless login with an emailed one-time code; one session per device, authenticated by an ' +
        'opaque bearer token (RFC 6750). Every error is JSON with a stable `code` (see ApiErrorDto). Request bodies are ' +
        'JSON objects of at most 16 KiB; an object that names one member twice is refused (400 `validation_failed`).',
    )
    .setVersion('1.0')
    // The order of the UI's sections: the API first, then what operators use.
    .addTag('sessions', 'Log in with an emailed code; check, list and revoke sessions.')
    .addTag('health', 'Liveness and readiness probes.')
    .addTag('metrics', 'Prometheus metrics.')
    .addBearerAuth({
      type: 'http',
      scheme: 'bearer',
      // Not a JWT (the swagger default): an opaque string of 43 base64url characters.
      bearerFormat: 'opaque',
      description:
        'The `token` returned by POST or PATCH /sessions, as `Authorization: Bearer <token>` (scheme in any case, one or more ' +
        'spaces; RFC 6750 §2.1). A request with two Authorization headers is treated as carrying none.',
    })
    .build();
  return closeRequestBodies(SwaggerModule.createDocument(app, config));
}

type SchemaObject = { $ref?: string; properties?: Record<string, SchemaObject>; items?: SchemaObject; additionalProperties?: boolean };

/**
 * Marks every object schema reachable from a request body `additionalProperties: false`: the
 * validation pipe refuses unknown members (400 `validation_failed` naming them), and
 * @nestjs/swagger has no decorator that says so. Response schemas stay open, so that clients
 * accept members added later.
 */
function closeRequestBodies(document: OpenAPIObject): OpenAPIObject {
  const schemas = (document.components?.schemas ?? {}) as Record<string, SchemaObject>;
  const seen = new Set<SchemaObject>();
  const close = (schema: SchemaObject | undefined): void => {
    if (!schema || seen.has(schema)) return;
    seen.add(schema);
    if (schema.$ref) return close(schemas[schema.$ref.replace('#/components/schemas/', '')]);
    if (schema.properties) {
      schema.additionalProperties = false;
      Object.values(schema.properties).forEach(close);
    }
    close(schema.items);
  };
  for (const path of Object.values(document.paths)) {
    for (const operation of Object.values(path) as { requestBody?: { content?: Record<string, { schema?: SchemaObject }> } }[]) {
      for (const media of Object.values(operation?.requestBody?.content ?? {})) close(media.schema);
    }
  }
  return document;
}

/** Serves the UI at `/docs` and the document at `/docs-json`. */
export function setupOpenApi(app: INestApplication): void {
  SwaggerModule.setup('docs', app, buildOpenApiDocument(app), { jsonDocumentUrl: 'docs-json' });
}
