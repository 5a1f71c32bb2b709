import { Module } from '@nestjs/common';
import { MailService } from './mail.service.js';
import { OtpMailQueue } from './otp-mail.queue.js';

@Module({ providers: [MailService, OtpMailQueue], exports: [OtpMailQueue] })
export class MailModule {}
