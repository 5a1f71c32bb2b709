import { ApiProperty } from '@nestjs/swagger';

/** The body of every error response (documented once, referenced by every endpoint). */
export class ApiErrorDto {
  @ApiProperty({ example: 400 })
  statusCode: number;

  @ApiProperty({ example: 'Bad Request', description: 'HTTP reason phrase of statusCode.' })
  error: string;

  @ApiProperty({
    example: 'otp_invalid',
    description:
      'Stable machine-readable code: validation_failed, malformed_json, bad_request, unsupported_mode, otp_invalid, ' +
      'otp_expired, otp_attempts_exceeded, session_expired, session_revoked, session_not_pending, session_not_found, ' +
      'not_found, forbidden, unauthorized, rate_limited, payload_too_large, unsupported_media_type, request_timeout, ' +
      'headers_too_large, database_unavailable, internal_error.',
  })
  code: string;

  @ApiProperty({ example: 'The code is not correct.' })
  message: string;

  @ApiProperty({ required: false, type: [String], example: ['user.email'], description: 'validation_failed: the offending fields.' })
  fields?: string[];

  @ApiProperty({ required: false, example: 3, description: 'otp_invalid: wrong codes still allowed.' })
  attempts_remaining?: number;

  @ApiProperty({ required: false, example: 42, description: 'rate_limited: seconds to wait, as in Retry-After.' })
  retry_after?: number;
}
