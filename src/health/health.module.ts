import { Module } from '@nestjs/common';
import { HealthController } from './health.controller.js';
import { ReadinessModule } from './readiness.module.js';

/** The service's `GET /health/live` and `GET /health/ready`. */
@Module({
  imports: [ReadinessModule],
  controllers: [HealthController],
  exports: [ReadinessModule],
})
export class HealthModule {}
