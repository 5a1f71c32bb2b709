import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ReadinessService } from './readiness.service.js';
import { ShutdownState } from './shutdown-state.js';

/** Readiness and the shutdown state it reports, for the service's and the mail worker's HTTP. */
@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  providers: [ShutdownState, ReadinessService],
  exports: [ShutdownState, ReadinessService],
})
export class ReadinessModule {}
