import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { MailService } from './mail.service.js';
import { OtpMailQueue } from './otp-mail.queue.js';
import { OtpMailRelay } from './otp-mail.relay.js';
import { OtpMailRenderer } from './otp-mail.renderer.js';

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

@Module({ providers: [MailService, OtpMailQueue, OtpMailRelay, otpMailRenderer], exports: [OtpMailQueue, OtpMailRenderer] })
export class MailModule {}
