import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, type HealthCheckResult } from '@nestjs/terminus';
import { ApiErrorResponses } from '../http/api-docs.js';
import { ReadinessService } from './readiness.service.js';

/** Liveness and readiness probes (@nestjs/terminus). */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly readiness: ReadinessService) {}

  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process is up and serving HTTP' })
  @ApiResponse({ status: 200, schema: { example: { status: 'ok' } } })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  // Our own 503 documentation (the ApiErrorDto body) replaces the one terminus would add.
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOperation({ summary: 'Readiness: PostgreSQL answers within 2 s, and the process is not shutting down' })
  @ApiResponse({ status: 200, schema: { example: { status: 'ok', info: { database: { status: 'up' } } } } })
  @ApiErrorResponses([
    503,
    '`database_unavailable`: PostgreSQL does not answer; `details` says which check failed. ' +
      '`shutting_down`: the process received SIGTERM or SIGINT and is draining (send new traffic elsewhere).',
  ])
  ready(): Promise<HealthCheckResult> {
    return this.readiness.check();
  }
}
