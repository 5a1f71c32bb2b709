import { Body, Controller, Delete, Get, Header, Headers, HttpCode, Param, Patch, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { toPublicId } from '../common/public-id.js';
import { ApiErrorResponses, BODY_ERRORS } from '../http/api-docs.js';
import { clientIp } from '../http/client-ip.js';
import { BodyValidationPipe } from '../http/validation.pipe.js';
import { OtpMailRenderer } from '../mail/otp-mail.renderer.js';
import { BearerAuthGuard, CurrentSession } from './bearer-auth.guard.js';
import { BearerToken, BearerTokenGuard } from './bearer-token.guard.js';
import { ConfirmSessionDto } from './dto/confirm-session.dto.js';
import { CreateSessionDto } from './dto/create-session.dto.js';
import {
  CONFIRMED_SESSION_EXAMPLE,
  OtpResentDto,
  PENDING_SESSION_EXAMPLE,
  SessionInfoDto,
  SessionListDto,
  SessionResponseDto,
} from './dto/session-response.dto.js';
import type { Session } from './entities/session.entity.js';
import { type LoginMode, LoginModePipe } from './login-mode.pipe.js';
import { SessionIdPipe } from './session-id.pipe.js';
import { SessionAccessService } from './session-access.service.js';
import { SessionsService } from './sessions.service.js';

const USER_AGENT_MAX = 512;

const SESSION_ID_PARAM = ApiParam({
  name: 'uuid',
  description: 'The session\'s id: `ses-` and a UUID, as `uuid` in the answer of POST /sessions. Anything else is 400 `validation_failed`.',
  example: 'ses-b3b66e99-dd10-4980-8a01-ae984728a833',
  schema: { type: 'string', pattern: '^ses-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$', example: 'ses-b3b66e99-dd10-4980-8a01-ae984728a833' },
});

/** HTTP mapping of the session endpoints; the rules live in the services. */
@ApiTags('sessions')
@Controller('sessions')
@ApiErrorResponses(
  [429, '`rate_limited`: per-IP request limit (RATE_LIMIT_PER_MINUTE), or a per-device/per-email limit.'],
  [503, '`database_unavailable`: PostgreSQL is not reachable.'],
  ...BODY_ERRORS,
)
export class SessionsController {
  constructor(
    private readonly sessions: SessionsService,
    private readonly access: SessionAccessService,
    private readonly mailRenderer: OtpMailRenderer,
  ) {}

  @Post()
  @Header('Cache-Control', 'no-store') // carries a bearer token (RFC 6749 §5.1)
  @ApiOperation({
    summary: 'Start a login, or get back one\'s own reusable session',
    description:
      'Creates a pending session and queues the email of its 6-digit code in the same transaction (201; a ' +
        'worker sends it and retries SMTP failures until the code expires). With `Authorization: Bearer <token>` of a ' +
      'still-usable session of this same device, returns it unchanged and sends nothing (200). Any other or ' +
      'malformed token is ignored.',
  })
  @ApiQuery({ name: 'mode', enum: ['email'], required: true })
  @ApiHeader({
    name: 'Accept-Language',
    required: false,
    example: 'de-DE,de;q=0.9,en;q=0.8',
    description:
      'The language of the login email: RFC 4647 lookup among the available locales (built-in: en, de, fr), ' +
      'MAIL_DEFAULT_LOCALE when none matches.',
  })
  @ApiBody({ type: CreateSessionDto })
  // The bearer token is optional here (a reuse): `{}` in the list is OpenAPI's "no authentication".
  @ApiSecurity({})
  @ApiBearerAuth()
  @ApiResponse({ status: 201, type: SessionResponseDto, description: 'New pending session; the code was emailed.', example: PENDING_SESSION_EXAMPLE })
  @ApiResponse({
    status: 200,
    type: SessionResponseDto,
    description: 'The caller\'s own session, unchanged.',
    examples: {
      pending: { summary: 'still pending', value: { ...PENDING_SESSION_EXAMPLE, is_new_user: false, is_new_device: false } },
      confirmed: { summary: 'confirmed', value: CONFIRMED_SESSION_EXAMPLE },
    },
  })
  @ApiErrorResponses(
    [400, '`unsupported_mode`, `validation_failed` (see `fields`), `malformed_json`.'],
    [429, '`rate_limited`: device cooldown or hourly cap per email address.'],
    [503, '`database_unavailable`: PostgreSQL is not reachable; nothing was created.'],
    ...BODY_ERRORS,
  )
  async start(
    @Query('mode', LoginModePipe) _mode: LoginMode,
    @Body(BodyValidationPipe) input: CreateSessionDto,
    @BearerToken() bearerToken: string | null,
    @Headers('accept-language') acceptLanguage: string | undefined,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionResponseDto> {
    const issued = await this.sessions.start({
      email: input.user.email,
      device: { type: input.device.type, vendorUuid: input.device.vendor_uuid ?? null },
      bearerToken,
      clientIp: clientIp(request),
      userAgent: request.headers['user-agent']?.slice(0, USER_AGENT_MAX) ?? null,
      locale: this.mailRenderer.negotiate(acceptLanguage),
    });
    reply.status(issued.created ? 201 : 200);
    return SessionResponseDto.from(issued);
  }

  @Get('current')
  @Header('Cache-Control', 'no-store')
  @UseGuards(BearerAuthGuard)
  @ApiOperation({ summary: 'The session of the bearer token', description: 'How other services check a token.' })
  @ApiBearerAuth()
  @ApiResponse({ status: 200, type: SessionInfoDto })
  @ApiErrorResponses([401, '`unauthorized`: token missing, unknown, pending, expired or revoked.'])
  current(@CurrentSession() session: Session): SessionInfoDto {
    return SessionInfoDto.from(session, session.id);
  }

  @Get()
  @Header('Cache-Control', 'no-store')
  @UseGuards(BearerAuthGuard)
  @ApiOperation({ summary: 'The user\'s live sessions', description: 'Pending and confirmed sessions still usable; never tokens.' })
  @ApiBearerAuth()
  @ApiResponse({ status: 200, type: SessionListDto })
  @ApiErrorResponses([401, '`unauthorized`: not the token of a confirmed, unexpired session.'])
  async list(@CurrentSession() session: Session): Promise<SessionListDto> {
    const live = await this.access.listLive(session);
    return { sessions: live.map((s) => SessionInfoDto.from(s, session.id)) };
  }

  @Patch(':uuid')
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Confirm a pending session with its code',
    description:
      'Checks in order: Authorization syntax (401), id format (400), body (400), existence (404), token ' +
      'ownership (401), then the session\'s state. A confirmed session answers 200 again (safe retry).',
  })
  @SESSION_ID_PARAM
  @ApiBody({ type: ConfirmSessionDto })
  @ApiBearerAuth()
  @ApiResponse({
    status: 200,
    type: SessionResponseDto,
    description: 'Confirmed (other sessions of the device revoked).',
    example: CONFIRMED_SESSION_EXAMPLE,
  })
  @ApiErrorResponses(
    [
      400,
      '`validation_failed` (a malformed session id, or a body whose otp_code is not 6 digits; see `fields`), `malformed_json`, ' +
        '`otp_invalid` (with `attempts_remaining`), `otp_expired`, `otp_attempts_exceeded`, `session_expired`, `session_revoked`.',
    ],
    [401, '`unauthorized`: missing or malformed Authorization, or not this session\'s token.'],
    [404, '`session_not_found`.'],
    ...BODY_ERRORS,
  )
  @UseGuards(BearerTokenGuard)
  async confirm(
    @Param('uuid', SessionIdPipe) sessionId: string,
    @Body(BodyValidationPipe) input: ConfirmSessionDto,
    @BearerToken() token: string,
  ): Promise<SessionResponseDto> {
    return SessionResponseDto.from(await this.sessions.confirm(sessionId, token, input.otp_code));
  }

  @Post(':uuid/otp')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Send a new code for a pending session',
    description: 'The old code stops working, attempts are reset and a new expiry starts. Same limits as a new login.',
  })
  @SESSION_ID_PARAM
  @ApiBearerAuth()
  @ApiResponse({ status: 202, type: OtpResentDto, description: 'A new code was emailed.' })
  @ApiErrorResponses(
    [400, '`validation_failed`: not a session id; `malformed_json`: a body that is not a JSON object (none is needed).'],
    [401, '`unauthorized`: missing or malformed Authorization, or not this session\'s token.'],
    [404, '`session_not_found`.'],
    [409, '`session_not_pending`: confirmed, ended, or its code expired; start a new login.'],
    [429, '`rate_limited`: device cooldown or hourly cap per email address.'],
    [503, '`database_unavailable`: PostgreSQL is not reachable.'],
  )
  @UseGuards(BearerTokenGuard)
  async resendOtp(@Param('uuid', SessionIdPipe) sessionId: string, @BearerToken() token: string): Promise<OtpResentDto> {
    const session = await this.sessions.resendOtp(sessionId, token);
    return { uuid: toPublicId('ses', session.id), otp_expires_at: session.otpExpiresAt.toISOString() };
  }

  @Delete(':uuid')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Revoke a session (log out, or sign another device out)',
    description:
      'With the session\'s own token (log out), or with a confirmed session of the same user. Repeating it ' +
      'answers 204 again; the revoked token stops working at once.',
  })
  @SESSION_ID_PARAM
  @ApiBearerAuth()
  @ApiResponse({ status: 204, description: 'Revoked (or already ended).' })
  @ApiErrorResponses(
    [400, '`validation_failed`: not a session id; `malformed_json`: a body that is not a JSON object (none is needed).'],
    [401, '`unauthorized`: token unknown, or neither the session\'s own nor a confirmed one.'],
    [404, '`session_not_found`: no such session, or another user\'s.'],
  )
  @UseGuards(BearerTokenGuard)
  async revoke(@Param('uuid', SessionIdPipe) sessionId: string, @BearerToken() token: string): Promise<void> {
    await this.access.revoke(sessionId, token);
  }
}
