import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, type Gunzip } from 'node:zlib';
import { ApiError } from '../common/api-error.js';

/** Largest accepted request body, after decompression. */
export const BODY_LIMIT_BYTES = 16 * 1024;

/** `application/json` and the `application/<something>+json` types (RFC 6839). */
const JSON_MEDIA_TYPE = /^application\/(?:[a-z0-9!#$&^_.-]+\+)?json$/;

const DECODERS: Record<string, (() => Gunzip) | null> = {
  identity: null,
  gzip: createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

const unsupportedType = () => new ApiError(415, 'unsupported_media_type', 'Send the body as JSON with Content-Type: application/json.');

/**
 * JSON bodies only, on every route: a request that carries a body of another media type, or of a
 * charset other than UTF-8 (RFC 8259 §8.1), gets 415; one over 16 KiB (also once inflated) gets 413;
 * malformed JSON gets 400 `malformed_json`. gzip, deflate and br bodies are inflated.
 */
export function registerJsonBodies(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    try {
      checkBodyHeaders(request);
      done();
    } catch (error) {
      done(error as Error);
    }
  });
  fastify.addHook('preParsing', async (request, _reply, payload) => decode(request, payload));
  fastify.removeAllContentTypeParsers();
  // checkBodyHeaders has already refused anything but JSON, so one parser serves every type.
  fastify.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJson(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}

function checkBodyHeaders(request: FastifyRequest): void {
  const { headers } = request;
  const hasBody = headers['transfer-encoding'] !== undefined || (headers['content-length'] ?? '0') !== '0';
  if (!hasBody) return;
  const [mediaType, ...parameters] = (headers['content-type'] ?? '').split(';');
  if (!JSON_MEDIA_TYPE.test(mediaType.trim().toLowerCase())) throw unsupportedType();
  const charset = parameters
    .map((parameter) => parameter.split('='))
    .find(([name]) => name.trim().toLowerCase() === 'charset')?.[1]
    ?.trim()
    .replace(/^"(.*)"$/, '$1')
    .toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new ApiError(415, 'unsupported_media_type', 'Send the body as UTF-8 JSON.');
  }
  if (!(contentEncoding(request) in DECODERS)) {
    throw new ApiError(415, 'unsupported_media_type', 'Content-Encoding must be identity, gzip, deflate or br.');
  }
}

function contentEncoding(request: FastifyRequest): string {
  return (request.headers['content-encoding'] || 'identity').toLowerCase();
}

/** The body as sent, or inflated; Fastify counts the inflated bytes against the limit. */
function decode(request: FastifyRequest, payload: Readable): Readable {
  const decoder = DECODERS[contentEncoding(request)];
  if (!decoder) return payload;
  const inflated = Object.assign(decoder(), { receivedEncodedLength: 0 });
  payload.on('data', (chunk: Buffer) => (inflated.receivedEncodedLength += chunk.length));
  payload.on('error', (error) => inflated.destroy(error));
  // Fastify reports a broken stream while it reads (400) and stops listening once the body is too
  // large; an error after that must not become an uncaught exception.
  inflated.on('error', () => undefined);
  return payload.pipe(inflated);
}

/** A JSON object or array (an empty body reads as `{}`); anything else → 400 `malformed_json`. */
function parseJson(body: string): unknown {
  if (body.length === 0) return {};
  const first = body.trimStart()[0];
  if (first === '{' || first === '[') {
    try {
      return JSON.parse(body);
    } catch {
      // malformed: answered below
    }
  }
  throw new ApiError(400, 'malformed_json', 'The request body is not valid JSON (an object is expected).');
}

/**
 * The error for a body Fastify could not read (size, length, a broken stream or compression).
 * @returns null when `error` is not one of those
 */
export function bodyReadError(error: unknown): ApiError | null {
  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError(413, 'payload_too_large', `The request body must be at most ${BODY_LIMIT_BYTES} bytes.`);
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return unsupportedType();
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return new ApiError(statusCode, 'bad_request', 'The request body could not be read; check Content-Encoding and Content-Length.');
  }
  return null;
}
