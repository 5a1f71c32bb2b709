import { Injectable, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, type HealthCheckResult, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { ApiError } from '../common/api-error.js';
import { ShutdownState } from './shutdown-state.js';

/**
 * Readiness of a process (the service's `GET /health/ready`, and the mail worker's): it is not
 * shutting down, and PostgreSQL answers within 2 s (@nestjs/terminus's TypeORM ping).
 */
@Injectable()
export class ReadinessService {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly shutdown: ShutdownState,
  ) {}

  /**
   * @param who what the `shutting_down` message names (`The service`, `The mail worker`)
   * @returns terminus's result, `{ status: 'ok', info: { database: { status: 'up' } }, … }`
   * @throws ApiError 503 `shutting_down` from the first SIGTERM/SIGINT; 503 `database_unavailable`
   *   (with terminus's `details` and `Retry-After: 5`) when PostgreSQL does not answer within 2 s
   */
  async check(who = 'The service'): Promise<HealthCheckResult> {
    // From the first signal on: a load balancer stops sending before the listener closes.
    if (this.shutdown.stopping) throw new ApiError(503, 'shutting_down', `${who} is shutting down.`);
    try {
      return await this.health.check([() => this.database.pingCheck('database', { timeout: 2_000 })]);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      const result = error.getResponse() as HealthCheckResult;
      throw new ApiError(503, 'database_unavailable', 'PostgreSQL is not reachable.', { details: result.details }, { 'Retry-After': '5' });
    }
  }
}
