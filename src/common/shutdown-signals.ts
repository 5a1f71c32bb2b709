import type { LoggerService } from '@nestjs/common';

/** What a process does on SIGTERM/SIGINT (see onShutdownSignals). */
export interface ShutdownPlan {
  /** The line logged at the first signal. */
  announce: (signal: NodeJS.Signals) => string;
  /** Runs at the first signal, before the delay (e.g. readiness 503). */
  begin?: () => void;
  /** Seconds between the first signal and `stop` (SHUTDOWN_DELAY); 0 by default. */
  delaySeconds?: number;
  /** Seconds `stop` gets before the process exits 1 anyway (SHUTDOWN_GRACE_PERIOD). */
  gracePeriodSeconds: number;
  /** The error logged when the grace period is over. */
  graceOver: string;
  /** Stops the process's work and closes its connections; the process then exits 0. */
  stop: () => Promise<void>;
  /**
   * Runs when the grace period is over, before the exit 1 (given at most ABANDON_TIMEOUT_MS): hands
   * work still in progress back to where another process can take it up.
   */
  abandon?: () => Promise<void>;
}

/** How long `abandon` may take once the grace period is over (ms). */
export const ABANDON_TIMEOUT_MS = 3_000;

/**
 * SIGTERM/SIGINT, however often they arrive (npm, systemd and a terminal may each pass one on):
 * the first starts the plan, later ones are logged and ignored (process.on, not once: a second
 * signal must not take Node's default action, exit at once). Exits 0 after `stop`, logging
 * "Shutdown complete: exit 0"; exits 1 when `stop` fails or the grace period is over (after `abandon`).
 */
export function onShutdownSignals(logger: LoggerService, plan: ShutdownPlan): void {
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.log(`${signal}: already shutting down`, 'Bootstrap');
      return;
    }
    stopping = true;
    plan.begin?.();
    logger.log(plan.announce(signal), 'Bootstrap');
    setTimeout(() => {
      setTimeout(() => {
        logger.error(plan.graceOver, 'Bootstrap');
        const exit = () => process.exit(1);
        if (!plan.abandon) return exit();
        setTimeout(exit, ABANDON_TIMEOUT_MS).unref();
        plan.abandon().then(exit, (error: unknown) => {
          logger.error(`Handing back the work in progress failed: ${String(error)}`, 'Bootstrap');
          exit();
        });
      }, plan.gracePeriodSeconds * 1000).unref();
      plan.stop().then(
        () => {
          logger.log('Shutdown complete: exit 0', 'Bootstrap');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error(`Shutdown failed: ${String(error)}`, 'Bootstrap');
          process.exit(1);
        },
      );
    }, (plan.delaySeconds ?? 0) * 1000);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
