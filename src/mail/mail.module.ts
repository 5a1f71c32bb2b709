import { Module } from '@nestjs/common';
import { MailService } from './mail.service.js';
import { OtpMailQueue } from './otp-mail.queue.js';
import { OtpMailRelay } from './otp-mail.relay.js';

@Module({ providers: [MailService, OtpMailQueue, OtpMailRelay], exports: [OtpMailQueue] })
export class MailModule {}
