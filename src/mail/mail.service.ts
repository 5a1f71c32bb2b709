import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import nodemailer, { type Transporter } from 'nodemailer';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { DeviceType } from '../sessions/entities/device.entity.js';
import { OtpMailRenderer } from './otp-mail.renderer.js';

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

/** How a login code's email is worded: its language and the device the login was started on. */
export interface OtpMailOptions {
  /** A BCP 47 tag from OtpMailRenderer.negotiate (MAIL_DEFAULT_LOCALE when omitted). */
  locale?: string;
  deviceType?: DeviceType;
}

/**
 * Headers of every login email. `Auto-Submitted: auto-generated` (RFC 3834 §5) tells vacation
 * responders and ticket systems not to answer it; `X-Auto-Response-Suppress` asks the same of
 * Microsoft Exchange, which does not read RFC 3834.
 */
const AUTOMATED_MAIL_HEADERS = { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' };

/**
 * Sends login codes. With `SMTP_URL` set, over SMTP with nodemailer (bounded timeouts, so a dead
 * server cannot hold a request for long), DKIM-signed (RFC 6376) when DKIM_* are set; without it
 * (development only, enforced by the config), the email is printed to the log with a `[DEV MAIL]`
 * marker. Every mail has a plain-text and an HTML part, a `Message-ID` and a `Date` (nodemailer
 * adds both, RFC 5322 §3.6), and no link or remote image (the built-in templates; see README).
 */
@Injectable()
export class MailService implements OnApplicationShutdown {
  private readonly logger = new Logger(MailService.name);
  private readonly transport: Transporter | null;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly renderer: OtpMailRenderer,
  ) {
    this.transport = config.mail.smtpUrl
      ? nodemailer.createTransport({
          url: config.mail.smtpUrl,
          // Reused SMTP connections instead of one handshake per mail; one per mail the worker
          // sends at once (MAIL_CONCURRENCY), so that no mail waits for a connection.
          pool: true,
          maxConnections: config.mail.concurrency,
          connectionTimeout: 5_000,
          greetingTimeout: 5_000,
          socketTimeout: 10_000,
          ...(config.mail.dkim ? { dkim: config.mail.dkim } : {}),
        })
      : null;
  }

  /**
   * Emails a login code.
   * @param validSeconds the code's lifetime, shown to the reader in whole minutes (rounded up)
   * @param locale BCP 47 language tag of the session (RFC 5646), for the renderer
   * @throws MailDeliveryError when the SMTP server refuses (permanent for 5xx) or cannot be reached
   */
  async sendOtp(to: string, code: string, validSeconds: number, options: OtpMailOptions = {}): Promise<void> {
    const mail = this.renderer.render({
      code,
      validMinutes: Math.ceil(validSeconds / 60),
      locale: options.locale ?? this.renderer.defaultLocale,
      deviceType: options.deviceType ?? 'othr',
    });
    if (!this.transport) {
      this.logger.warn(`[DEV MAIL] to=${to} subject="${mail.subject}"\n${mail.text}`);
      this.metrics.mailsSent.inc();
      return;
    }
    try {
      await this.transport.sendMail({ from: this.config.mail.from, to, ...mail, date: new Date(), headers: AUTOMATED_MAIL_HEADERS });
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
