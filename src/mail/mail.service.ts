import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import nodemailer, { type Transporter } from 'nodemailer';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { renderOtpMail } from './otp-mail.template.js';

/**
 * The mail could not be handed to the SMTP server. `permanent` when the server rejected it with a
 * 5xx reply (RFC 5321 §4.2.1: do not repeat the same request); otherwise (4xx, unreachable, timed
 * out) a later attempt may succeed.
 */
export class MailDeliveryError extends Error {
  override name = 'MailDeliveryError';

  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/**
 * Sends login codes. With `SMTP_URL` set, over SMTP with nodemailer (bounded timeouts, so a dead
 * server cannot hold a request for long); without it (development only, enforced by the config),
 * the email is printed to the log with a `[DEV MAIL]` marker.
 */
@Injectable()
export class MailService implements OnApplicationShutdown {
  private readonly logger = new Logger(MailService.name);
  private readonly transport: Transporter | null;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.transport = config.mail.smtpUrl
      ? nodemailer.createTransport({
          url: config.mail.smtpUrl,
          // Reuse up to 5 SMTP connections instead of one handshake per mail.
          pool: true,
          maxConnections: 5,
          connectionTimeout: 5_000,
          greetingTimeout: 5_000,
          socketTimeout: 10_000,
        })
      : null;
  }

  /**
   * Emails a login code.
   * @param validSeconds the code's lifetime, shown to the reader in whole minutes (rounded up)
   * @param locale BCP 47 language tag of the session (RFC 5646), for the renderer
   * @throws MailDeliveryError when the SMTP server refuses (permanent for 5xx) or cannot be reached
   */
  async sendOtp(to: string, code: string, validSeconds: number, locale: string): Promise<void> {
    const mail = renderOtpMail(code, Math.ceil(validSeconds / 60), locale);
    if (!this.transport) {
      this.logger.warn(`[DEV MAIL] to=${to} subject="${mail.subject}"\n${mail.text}`);
      this.metrics.mailsSent.inc();
      return;
    }
    try {
      await this.transport.sendMail({ from: this.config.mail.from, to, ...mail });
      this.metrics.mailsSent.inc();
    } catch (error) {
      this.metrics.mailSendErrors.inc();
      const reason = error instanceof Error ? error.message : String(error);
      const responseCode = (error as { responseCode?: unknown }).responseCode;
      throw new MailDeliveryError(reason, typeof responseCode === 'number' && responseCode >= 500);
    }
  }

  /** After the HTTP server has drained, so requests in flight can still send their mail. */
  onApplicationShutdown(): void {
    this.transport?.close();
  }
}
