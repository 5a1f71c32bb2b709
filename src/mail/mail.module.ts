import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { MailService } from './mail.service.js';
import { OtpMailQueue } from './otp-mail.queue.js';
import { OtpMailRelay } from './otp-mail.relay.js';
import { OtpMailRenderer } from './otp-mail.renderer.js';
import { OtpMailWorker } from './otp-mail.worker.js';

/** Loads and checks the mail templates while the application starts: a bad one stops the start. */
const otpMailRenderer = {
  provide: OtpMailRenderer,
  inject: [AppConfig],
  useFactory: (config: AppConfig) =>
    OtpMailRenderer.load({
      templatesDir: config.mail.templatesDir,
      defaultLocale: config.mail.defaultLocale,
      appName: config.appName,
      supportAddress: config.mail.supportAddress,
    }),
};

/**
 * What sends login mail: the relay from the outbox to graphile-worker, the worker (graphile-worker's
 * runner), SMTP, the templates. Nothing here starts by itself: the service process's OtpMailQueue
 * (MailModule) or the mail worker process (MailWorkerModule) starts what it runs.
 */
@Module({
  providers: [MailService, OtpMailRelay, OtpMailWorker, otpMailRenderer],
  exports: [MailService, OtpMailRelay, OtpMailWorker, OtpMailRenderer],
})
export class MailSendingModule {}

/** The service process's mail: queued by the logins (OtpMailQueue), sent here when MAIL_WORKER=inline. */
@Module({ imports: [MailSendingModule], providers: [OtpMailQueue], exports: [OtpMailQueue, MailSendingModule] })
export class MailModule {}
