import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { ApiError } from '../common/api-error.js';
import { Clock } from '../common/clock.js';
import { AppConfig } from '../config/app-config.js';
import { OtpMailQueue } from '../mail/otp-mail.queue.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { generateOtp, hashOtp } from '../security/otp.js';
import { generateToken, hashToken } from '../security/token.js';
import { Device } from './entities/device.entity.js';
import { Session } from './entities/session.entity.js';
import { User } from './entities/user.entity.js';
import { SessionErrors } from './session.errors.js';
import { confirmedExpiry, type SendRefusal } from './session-rules.js';
import { SessionsRepository } from './sessions.repository.js';

/** A session as handed to its token holder. */
export interface IssuedSession {
  /** The session with its user and device. */
  session: Session;
  /** The session's bearer token (43 base64url characters); only its SHA-256 is stored. */
  token: string;
  isNewUser: boolean;
  isNewDevice: boolean;
  /** True when a new pending session was created (201), false when an existing one was reused (200). */
  created: boolean;
}

export interface StartLogin {
  /** Normalized email address (trimmed, NFC, lower-cased, IDNA A-label domain). */
  email: string;
  /** The device as the request names it; `vendorUuid` lower-case, or null when absent. */
  device: Pick<Device, 'type' | 'vendorUuid'>;
  /** The caller's bearer token, if it sent one. */
  bearerToken: string | null;
  clientIp: string | null;
  userAgent: string | null;
  /** The login email's language (BCP 47), negotiated from Accept-Language; stored on the session, a resend uses it too. */
  locale?: string;
}

/** The language of the code mail when the caller names none. */
export const DEFAULT_LOCALE = 'en';

/** The login rules of SPEC.md: start (or reuse) a session, confirm it with the emailed code. */
@Injectable()
export class SessionsService {
  constructor(
    private readonly repository: SessionsRepository,
    private readonly mailQueue: OtpMailQueue,
    private readonly clock: Clock,
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * POST /sessions: hands back the caller's own reusable session when it proves it with the token,
   * otherwise creates a pending session and queues the email of its code, both in one statement
   * (SessionsRepository.startLogin) that also applies the send limits (decided in PostgreSQL only).
   * @returns the Session (with its User and Device) and its token; `created` false for a reused one
   * @throws ApiError 429 `rate_limited` (per-device cooldown, per-email hourly cap)
   */
  async start(request: StartLogin): Promise<IssuedSession> {
    const reused = await this.findReusable(request);
    if (reused) {
      this.metrics.sessionsReused.inc();
      return reused;
    }

    const token = generateToken();
    const code = generateOtp();
    const session = this.newPendingSession(request, token, code);
    const mail = this.mailQueue.payloadFor({
      sessionId: session.id,
      to: session.user.email,
      code,
      expiresAt: session.otpExpiresAt,
      deviceType: session.device.type,
    });
    const { isNewUser, isNewDevice, refusal } = await this.repository.startLogin(session, this.config.otp, mail);
    if (refusal) throw this.sendRefused(refusal);
    const issued: IssuedSession = { session, token, isNewUser, isNewDevice, created: true };
    this.mailQueue.wake(session.id);
    this.metrics.sessionsCreated.inc({ device_type: session.device.type });
    return issued;
  }

  /**
   * PATCH /sessions/{uuid}: checks the code and moves the session along SPEC's state machine, in
   * one statement (SessionsRepository.confirm): a pending session with the right code is confirmed
   * and the device's other live sessions are revoked; a wrong code uses an attempt, the last one
   * expiring the session; a code past its expiry expires the session. Those writes are committed
   * even when an error is answered.
   * @param sessionId the session's UUID (without `ses-`)
   * @param code the submitted 6-digit code
   * @returns the Session as it is afterwards (with its User and Device) and the token
   * @throws ApiError 404 `session_not_found`, 401 `unauthorized` (token not this session's),
   *   400 `otp_invalid` (with `attempts_remaining`), `otp_expired`, `otp_attempts_exceeded`,
   *   `session_expired`, `session_revoked`
   */
  async confirm(sessionId: string, token: string, code: string): Promise<IssuedSession> {
    const now = this.clock.now();
    const ttl = this.config.session;
    const result = await this.repository.confirm(
      sessionId,
      hashToken(token),
      hashOtp(this.config.appSecret, sessionId, code),
      now,
      { othr: confirmedExpiry('othr', now, ttl), mobi: confirmedExpiry('mobi', now, ttl) },
    );
    switch (result.outcome) {
      case 'not_found':
        throw SessionErrors.notFound();
      case 'unauthorized':
        throw SessionErrors.unauthorized('not_this_session');
      case 'confirmed': {
        const { session, revokedOthers } = result;
        this.metrics.sessionsConfirmed.inc({ device_type: session.device.type });
        if (revokedOthers > 0) this.metrics.sessionsRevoked.inc({ cause: 'replaced_on_device' }, revokedOthers);
        return { session, token, isNewUser: false, isNewDevice: false, created: false };
      }
      case 'already_confirmed':
        return { session: result.session, token, isNewUser: false, isNewDevice: false, created: false };
      case 'otp_invalid': {
        const attemptsLeft = result.session.otpAttemptsLeft;
        this.metrics.otpFailures.inc();
        if (attemptsLeft === 0) this.metrics.sessionsExpired.inc({ reason: 'otp_attempts_exceeded' });
        throw SessionErrors.otpInvalid(attemptsLeft);
      }
      case 'otp_expired':
        this.metrics.sessionsExpired.inc({ reason: 'otp_expired' });
        throw SessionErrors.otpExpired();
      case 'confirmed_session_expired':
        this.metrics.sessionsExpired.inc({ reason: 'session_ttl' });
        throw SessionErrors.sessionExpired();
      case 'session_expired':
        throw SessionErrors.sessionExpired();
      case 'session_revoked':
        throw SessionErrors.sessionRevoked();
      case 'otp_attempts_exceeded':
        throw SessionErrors.otpAttemptsExceeded();
    }
  }

  /**
   * POST /sessions/{uuid}/otp: a new code for a pending session (the old one stops working,
   * attempts are reset, a new expiry starts), mailed in the session's locale. Same send limits as
   * a new login, decided by the same SQL function (`send_otp`).
   * @param sessionId the session's UUID (without `ses-`)
   * @returns the Session (with its User and Device) with its new code's `otpExpiresAt`
   * @throws ApiError 404 `session_not_found`, 401 `unauthorized` (token not this session's), 409
   *   `session_not_pending` (confirmed, ended, or its code expired), 429 `rate_limited`
   */
  async resendOtp(sessionId: string, token: string): Promise<Session> {
    const now = this.clock.now();
    const code = generateOtp();
    const { otp } = this.config;
    const outcome = await this.repository.transaction(async (manager) => {
      await this.repository.lockUserOfSession(manager, sessionId);
      const found = await this.repository.lockDeviceAndSession(manager, sessionId, now);
      if (!found) throw SessionErrors.notFound();
      const { session, usable } = found;
      if (!hashToken(token).equals(session.tokenHash)) throw SessionErrors.unauthorized('not_this_session');
      // A refusal changes nothing: a pending session whose code expired is left to the next PATCH
      // (which answers otp_expired once, then session_expired) or the sweep.
      if (session.status !== 'pending' || !usable) return SessionErrors.sessionNotPending();
      const otpExpiresAt = new Date(now.getTime() + otp.ttl * 1000);
      const mail = this.mailQueue.payloadFor({ sessionId: session.id, to: session.user.email, code, expiresAt: otpExpiresAt, deviceType: session.device.type });
      const refusal = await this.repository.sendOtp(manager, session, now, otp, mail, otpExpiresAt);
      if (refusal) return this.sendRefused(refusal);
      const newOtp = { otpHash: hashOtp(this.config.appSecret, session.id, code), otpExpiresAt, otpAttemptsLeft: otp.maxAttempts };
      await this.repository.replaceOtp(manager, session.id, newOtp);
      return Object.assign(session, newOtp);
    });
    if (outcome instanceof ApiError) throw outcome;
    this.mailQueue.wake(outcome.id);
    return outcome;
  }

  /**
   * A new pending session for the request's user and device, not stored yet. The user's and the
   * device's ids are fresh, used only if they are new (SessionsRepository.startLogin sets the ids
   * of existing ones).
   */
  private newPendingSession(request: StartLogin, token: string, code: string): Session {
    const now = this.clock.now();
    const { otp } = this.config;
    const user = Object.assign(new User(), { id: randomUUID(), email: request.email } satisfies Partial<User>);
    const device = Object.assign(new Device(), {
      id: randomUUID(),
      userId: user.id,
      type: request.device.type,
      vendorUuid: request.device.vendorUuid,
    } satisfies Partial<Device>);
    const id = randomUUID();
    return Object.assign(new Session(), {
      id,
      userId: user.id,
      user,
      deviceId: device.id,
      device,
      status: 'pending',
      tokenHash: hashToken(token),
      otpHash: hashOtp(this.config.appSecret, id, code),
      otpExpiresAt: new Date(now.getTime() + otp.ttl * 1000),
      otpAttemptsLeft: otp.maxAttempts,
      createdAt: now,
      confirmedAt: null,
      expiresAt: null,
      endedAt: null,
      clientIp: request.clientIp,
      userAgent: request.userAgent,
      lastSeenAt: null,
      locale: request.locale ?? DEFAULT_LOCALE,
    } satisfies Partial<Session>);
  }

  /** The 429 for a send that `send_otp` refused, explained, with its Retry-After seconds. */
  private sendRefused(refusal: SendRefusal): ApiError {
    return SessionErrors.rateLimited(
      refusal.retryAfter,
      refusal.reason === 'cooldown'
        ? `A code was sent to this device less than ${this.config.otp.resendCooldown} s ago; retry in ${refusal.retryAfter} s.`
        : `Too many codes were sent to this email address in the last hour; retry in ${refusal.retryAfter} s.`,
    );
  }

  private async findReusable(request: StartLogin): Promise<IssuedSession | null> {
    if (!request.bearerToken) return null;
    const found = await this.repository.findByTokenHashOnDevice(
      hashToken(request.bearerToken),
      request.email,
      request.device,
      this.clock.now(),
    );
    if (!found?.usable) return null;
    return { session: found.session, token: request.bearerToken, isNewUser: false, isNewDevice: false, created: false };
  }
}
