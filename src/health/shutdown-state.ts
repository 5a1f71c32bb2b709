import { Injectable } from '@nestjs/common';

/**
 * Whether this process has been told to stop (SIGTERM/SIGINT). From then on readiness answers 503,
 * so that a load balancer or Kubernetes stops sending new traffic while the process still serves
 * (SHUTDOWN_DELAY) and drains (SHUTDOWN_GRACE_PERIOD).
 */
@Injectable()
export class ShutdownState {
  private stoppingSince: Date | null = null;

  get stopping(): boolean {
    return this.stoppingSince !== null;
  }

  /** Marks the process as stopping; later calls keep the first time. */
  begin(): void {
    this.stoppingSince ??= new Date();
  }
}
