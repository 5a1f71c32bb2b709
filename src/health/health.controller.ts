import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, type HealthCheckResult, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { ApiError } from '../common/api-error.js';
import { ApiErrorResponses } from '../http/api-docs.js';
import { ShutdownState } from './shutdown-state.js';

/** Liveness and readiness probes (@nestjs/terminus). */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly shutdown: ShutdownState,
  ) {}

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
  async ready(): Promise<HealthCheckResult> {
    // From the first signal on: a load balancer stops sending before the listener closes.
    if (this.shutdown.stopping) throw new ApiError(503, 'shutting_down', 'The service is shutting down.');
    try {
      return await this.health.check([() => this.database.pingCheck('database', { timeout: 2_000 })]);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      const result = error.getResponse() as HealthCheckResult;
      throw new ApiError(503, 'database_unavailable', 'PostgreSQL is not reachable.', { details: result.details }, { 'Retry-After': '5' });
    }
  }
}
