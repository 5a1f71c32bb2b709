import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { ApiErrorDto } from './api-error.dto.js';

/** Documents error answers of an endpoint: `[status, description naming the codes]`. */
export function ApiErrorResponses(...errors: [status: number, description: string][]) {
  return applyDecorators(
    ...errors.map(([status, description]) =>
      ApiResponse({
        status,
        description,
        type: ApiErrorDto,
        headers:
          status === 429
            ? { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } }
            : undefined,
      }),
    ),
  );
}

export const BODY_ERRORS: [number, string][] = [
  [413, '`payload_too_large`: body over 16 KiB.'],
  [415, '`unsupported_media_type`: a body not sent as JSON (UTF-8; identity, gzip, deflate or br).'],
];
