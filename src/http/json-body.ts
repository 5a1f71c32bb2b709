import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, type Gunzip } from 'node:zlib';
import { ApiError } from '../common/api-error.js';
import { findDuplicateMember } from './duplicate-members.js';

/** Largest accepted request body, after decompression. */
export const BODY_LIMIT_BYTES = 16 * 1024;

/**
 * After answering a request whose body was not read to its end (413, a broken body stream), up to
 * this many more body bytes are read and thrown away, for at most LINGER_MAX_MS, before the
 * connection is cut: the client, still sending, then reads the answer instead of a reset (EPIPE,
 * "fetch failed"). nginx's "lingering close" does the same (lingering_time, 30 s by default).
 */
export const LINGER_MAX_BYTES = 16 * 1024 * 1024;
export const LINGER_MAX_MS = 10_000;

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
  // Fastify answers a body it stopped reading with `Connection: close`, and Node then closes the
  // socket with the rest of the body unread, which makes the kernel send a reset that can reach the
  // client before it reads the answer. Keep the connection instead and read the rest away.
  fastify.addHook('onSend', async (request, reply, payload) => {
    if (!request.raw.complete && reply.getHeader('connection') === 'close') {
      reply.removeHeader('connection');
      discardRestOfBody(request.raw, reply.raw);
    }
    return payload;
  });
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

/**
 * Once the answer is written, reads and discards the rest of the request body without keeping it
 * (Node itself discards it when the body was never read); past LINGER_MAX_BYTES more bytes on the
 * connection, or LINGER_MAX_MS, the connection is destroyed.
 */
function discardRestOfBody(request: IncomingMessage, response: ServerResponse): void {
  response.once('finish', () => {
    if (request.complete) return;
    const socket = request.socket;
    const bytesAtAnswer = socket.bytesRead;
    const stop = (cut: boolean) => {
      clearInterval(watch);
      clearTimeout(deadline);
      if (cut) socket.destroy();
    };
    // bytesRead counts what Node discards too (a body it never passed on, after Fastify refused it by its Content-Length).
    const watch = setInterval(() => socket.bytesRead - bytesAtAnswer > LINGER_MAX_BYTES && stop(true), 50).unref();
    const deadline = setTimeout(() => stop(true), LINGER_MAX_MS).unref();
    request.once('end', () => stop(false));
    socket.once('close', () => stop(false));
    request.unpipe(); // from a decompressor that stopped being read
    request.resume();
  });
}

/**
 * A JSON object or array (an empty body reads as `{}`); anything else → 400 `malformed_json`. An
 * object that names one member twice → 400 `validation_failed` naming it (never last-one-wins).
 */
function parseJson(body: string): unknown {
  if (body.length === 0) return {};
  const first = body.trimStart()[0];
  let parsed: unknown;
  if (first === '{' || first === '[') {
    try {
      parsed = JSON.parse(body);
    } catch {
      // malformed: answered below
    }
  }
  if (parsed === undefined) throw new ApiError(400, 'malformed_json', 'The request body is not valid JSON (an object is expected).');
  const duplicate = findDuplicateMember(body);
  if (duplicate !== null) {
    throw new ApiError(400, 'validation_failed', `property ${duplicate} must appear only once`, { fields: [duplicate] });
  }
  return parsed;
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
  // Fastify answers a body it could not read with its FST_ERR_CTP_* errors, or with the stream's own
  // error marked 400; any other 4xx (e.g. @fastify/static's 403 for a path out of its folder, which
  // Nest hands over wrapped) is not about the body.
  if (statusCode === 400 || (typeof code === 'string' && code.startsWith('FST_ERR_CTP_') && typeof statusCode === 'number')) {
    return new ApiError(statusCode, 'bad_request', 'The request body could not be read; check Content-Encoding and Content-Length.');
  }
  return null;
}
