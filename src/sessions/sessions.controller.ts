import { Body, Controller, Headers, HttpCode, Param, Patch, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { fromPublicId } from '../common/public-id.js';
import { validateBody } from '../http/validate-body.js';
import { parseBearer } from '../security/token.js';
import { ConfirmSessionDto } from './dto/confirm-session.dto.js';
import { CreateSessionDto } from './dto/create-session.dto.js';
import { SessionResponseDto } from './dto/session-response.dto.js';
import { SessionErrors } from './session.errors.js';
import { SessionsService } from './sessions.service.js';

const USER_AGENT_MAX = 512;

/** HTTP mapping of the login flow; the rules live in SessionsService. */
@Controller('sessions')
export class SessionsController {
  constructor(private readonly sessions: SessionsService) {}

  /** Start a login (201, code emailed) or get back one's own reusable session (200). */
  @Post()
  async start(
    @Query('mode') mode: unknown,
    @Headers('authorization') authorization: string | undefined,
    @Body() body: unknown,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SessionResponseDto> {
    if (mode !== 'email') throw SessionErrors.unsupportedMode();
    const input = await validateBody(CreateSessionDto, body);
    const issued = await this.sessions.start({
      device: { email: input.user.email, type: input.device.type, vendorUuid: input.device.vendor_uuid ?? null },
      // A token that is malformed or names no reusable session of this device is ignored (SPEC).
      bearerToken: parseBearer(authorization),
      clientIp: request.ip ?? null,
      userAgent: request.headers['user-agent']?.slice(0, USER_AGENT_MAX) ?? null,
    });
    response.status(issued.created ? 201 : 200);
    return SessionResponseDto.from(issued);
  }

  /** Confirm a pending session with its emailed code. Checks run in SPEC's order. */
  @Patch(':uuid')
  @HttpCode(200)
  async confirm(
    @Param('uuid') publicId: string,
    @Headers('authorization') authorization: string | undefined,
    @Body() body: unknown,
  ): Promise<SessionResponseDto> {
    const sessionId = fromPublicId('ses', publicId);
    if (!sessionId) throw SessionErrors.invalidSessionId();
    const token = parseBearer(authorization);
    if (!token) throw SessionErrors.unauthorized();
    const input = await validateBody(ConfirmSessionDto, body);
    return SessionResponseDto.from(await this.sessions.confirm(sessionId, token, input.otp_code));
  }
}
