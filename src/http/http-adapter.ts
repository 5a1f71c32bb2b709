import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { ApiError } from '../common/api-error.js';
import type { AppConfig } from '../config/app-config.js';
import { BODY_LIMIT_BYTES } from './json-body.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** `X-Request-Id` from the client when it looks like an id, otherwise a new UUID v4. */
function requestId(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * The answer to a request Node's HTTP parser refused (bad syntax, headers too large, too slow), in
 * the service's error shape (no body for HEAD); the connection is closed, as Fastify's own handler does.
 */
function answerClientError(error: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const answer =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new ApiError(408, 'request_timeout', 'The request was not received in time.')
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? new ApiError(431, 'headers_too_large', 'The request headers are too large.')
        : new ApiError(400, 'bad_request', 'The request is not valid HTTP/1.1.');
  const head = Buffer.isBuffer(error.rawPacket) && error.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
  const body = head ? '' : JSON.stringify(answer.body());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Longest time a client may take to send a whole request (headers and body). */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * The answer to a URL Fastify's router cannot read (broken percent-encoding), in the service's
 * error shape, with the request id.
 */
function answerFrameworkError(_error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const answer = new ApiError(400, 'bad_request', 'The URL is not valid (check its percent-encoding).');
  reply.header('X-Request-Id', request.id).status(answer.status).send(answer.body());
}

/**
 * TRUST_PROXY for Fastify, with Express's meaning kept: a hop count n believes the n nearest
 * addresses of X-Forwarded-For (Fastify itself trusts no hop for a bare number).
 */
function trustProxyOption(value: AppConfig['trustProxy']): boolean | string | ((address: string, hop: number) => boolean) {
  return typeof value === 'number' ? (_address, hop) => hop < value : value;
}

/**
 * The HTTP server: Nest on Fastify (several times less CPU per request than Express 5 here; see
 * docs/performance.md). TRUST_PROXY decides which X-Forwarded-For addresses `request.ip` believes
 * (proxy-addr rules, as in Express); route parameters may be long so that a malformed session id
 * is a 400 from the rules, not a 404 from the router. No Nest middleware: hooks do that work.
 */
export function createHttpAdapter(config: Pick<AppConfig, 'trustProxy'>): FastifyAdapter {
  return new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: trustProxyOption(config.trustProxy),
    skipMiddie: true,
    genReqId: requestId,
    clientErrorHandler: answerClientError,
    frameworkErrors: answerFrameworkError,
    // A whole request, body included, must arrive within 30 s (Fastify's default is no limit).
    requestTimeout: REQUEST_TIMEOUT_MS,
    // Requests that arrive on open connections during shutdown are served like any other.
    return503OnClosing: false,
    // Keys like __proto__ reach the body validation, which names them (400 validation_failed).
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    // Longer than any URL Node accepts (16 KiB of headers): a long id is the rules' 400, not a 414.
    routerOptions: { maxParamLength: 65_535 },
  });
}
