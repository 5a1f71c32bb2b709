import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { MailModule } from '../mail/mail.module.js';
import { Session } from './entities/session.entity.js';
import { BearerAuthGuard } from './bearer-auth.guard.js';
import { SessionAccessService } from './session-access.service.js';
import { SessionSweepService } from './session-sweep.service.js';
import { SessionsController } from './sessions.controller.js';
import { SessionsRepository } from './sessions.repository.js';
import { SessionsService } from './sessions.service.js';

@Module({
  imports: [MailModule, TypeOrmModule.forFeature([Session])],
  controllers: [SessionsController],
  providers: [SessionsService, SessionAccessService, SessionSweepService, SessionsRepository, BearerAuthGuard],
  exports: [SessionSweepService],
})
export class SessionsModule {}
