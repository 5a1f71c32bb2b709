import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { deriveKey, seal } from '../security/sealed-box.js';
import type { OtpMail, OtpMailPayload } from './otp-mail.job.js';
import { OtpMailRelay } from './otp-mail.relay.js';
import { OtpMailWorker } from './otp-mail.worker.js';

/**
 * Durable delivery of login codes, the service process's side. `send_otp` (SQL) writes the sealed
 * mail to `mail_outbox` in the transaction of its session, so there is no session without its mail
 * and no mail for a rolled-back request; OtpMailRelay hands outbox rows to graphile-worker in
 * batches (its documented `add_jobs()`), woken by this replica's commits (`wake()`); OtpMailWorker
 * (graphile-worker's runner) sends them: in this process when MAIL_WORKER=inline (the default), in
 * mail worker processes (`dist/mail-worker.js`) when MAIL_WORKER=off.
 */
@Injectable()
export class OtpMailQueue implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OtpMailQueue.name);
  private readonly key: Buffer;
  private workerStarted = false;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly relay: OtpMailRelay,
    private readonly worker: OtpMailWorker,
  ) {
    this.key = deriveKey(config.appSecret, 'otp-mail-job');
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.config.mail.worker === 'inline') {
      // Installs graphile-worker's schema first, which the relay queues into. This process serves
      // requests too: they go first while they keep it busy.
      await this.worker.start({ requestsFirst: true });
      this.workerStarted = true;
    } else {
      await this.worker.installSchema();
      this.logger.log('MAIL_WORKER=off: this process queues the login mails; mail worker processes (dist/mail-worker.js) send them');
    }
    this.relay.start();
    this.metrics.registerMailQueueDepth(() => this.relay.depth());
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay.stop();
    if (this.workerStarted) await this.worker.stop();
    this.workerStarted = false;
  }

  /** The outbox payload of a session's code mail, for `send_otp`: the code sealed to the session id. */
  payloadFor(mail: OtpMail): OtpMailPayload {
    return {
      to: mail.to,
      sealedCode: seal(this.key, mail.code, mail.sessionId),
      expiresAt: mail.expiresAt.toISOString(),
      validSeconds: this.config.otp.ttl,
      deviceType: mail.deviceType,
    };
  }

  /** Hands the mail a request of this replica queued for `sessionId` to the job queue now (call after the commit). */
  wake(sessionId: string): void {
    this.relay.wake(sessionId);
  }

  /**
   * Drops the mails whose code has expired: their outbox rows (a queued job naming one then sends
   * nothing for it). @returns the number of outbox rows deleted
   */
  purgeExpired(now: Date, batch: number): Promise<number> {
    return this.relay.purgeExpired(now, batch);
  }
}
