import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import { ApiError } from '../common/api-error.js';

/** Largest accepted request body. */
export const BODY_LIMIT_BYTES = 16 * 1024;

const parseJson = express.json({ limit: BODY_LIMIT_BYTES, strict: true, type: ['application/json', 'application/*+json'] });

/**
 * JSON bodies only: a request that carries a body of another media type gets 415, one over 16 KiB
 * gets 413, malformed JSON gets 400. Errors are passed on as ApiErrors for the exception filter.
 */
export function jsonBodyMiddleware(req: Request, res: Response, next: NextFunction): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  if (hasBody && !req.is(['application/json', 'application/*+json'])) {
    next(new ApiError(415, 'unsupported_media_type', 'Send the body as JSON with Content-Type: application/json.'));
    return;
  }
  parseJson(req, res, (error?: unknown) => next(error ? toApiError(error) : undefined));
}

function toApiError(error: unknown): ApiError | unknown {
  const type = (error as { type?: string }).type;
  switch (type) {
    case 'entity.too.large':
      return new ApiError(413, 'payload_too_large', `The request body must be at most ${BODY_LIMIT_BYTES} bytes.`);
    case 'entity.parse.failed':
      return new ApiError(400, 'malformed_json', 'The request body is not valid JSON (an object is expected).');
    case 'encoding.unsupported':
      return new ApiError(415, 'unsupported_media_type', 'Content-Encoding must be identity, gzip, deflate or br.');
    case 'charset.unsupported':
      return new ApiError(415, 'unsupported_media_type', 'Send the body as UTF-8 JSON.');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new ApiError(400, 'bad_request', 'The request body could not be read.');
    default: {
      // Other client-side read failures (e.g. a body that is not the gzip it claims to be).
      const status = (error as { status?: unknown }).status;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        return new ApiError(status, 'bad_request', 'The request body could not be read; check Content-Encoding and Content-Length.');
      }
      return error;
    }
  }
}
