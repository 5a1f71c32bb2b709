import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { hashToken } from '../security/token.js';
import type { Session } from './entities/session.entity.js';
import { SessionErrors, unauthorizedReason } from './session.errors.js';
import { authenticates, LAST_SEEN_RESOLUTION, lastSeenIsStale } from './session-rules.js';
import { SessionsRepository } from './sessions.repository.js';

/** What a confirmed session's token may do: prove who it is, list its user's sessions, sign out. */
@Injectable()
export class SessionAccessService {
  constructor(
    private readonly repository: SessionsRepository,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * The confirmed, unexpired session of a bearer token: one indexed lookup by the token's SHA-256.
   * Refreshes `last_seen_at` at most once a minute (LAST_SEEN_RESOLUTION).
   * @returns the Session with its User and Device, `lastSeenAt` as stored after this use
   * @throws ApiError 401 `unauthorized` for a missing, unknown, pending, expired or revoked token
   */
  async authenticate(token: string | null): Promise<Session> {
    const now = this.clock.now();
    if (!token) throw SessionErrors.unauthorized('missing');
    const session = await this.repository.findByTokenHash(hashToken(token));
    if (!session) throw SessionErrors.unauthorized('unknown');
    if (!authenticates(session, now)) throw SessionErrors.unauthorized(unauthorizedReason(session.status));
    if (lastSeenIsStale(session, now)) {
      await this.repository.touchLastSeen(session.id, now, new Date(now.getTime() - LAST_SEEN_RESOLUTION * 1000));
      session.lastSeenAt = now;
    }
    return session;
  }

  /** The pending and confirmed sessions of `current`'s user that can still be used, newest first, each with its User and Device. */
  listLive(current: Session): Promise<Session[]> {
    return this.repository.listLiveForUser(current.userId, this.clock.now());
  }

  /**
   * DELETE /sessions/{uuid}: with the session's own token (log out; repeating it is harmless), or
   * with a confirmed session of the same user (sign another device out). A session that already
   * ended keeps its state.
   * @param sessionId the session's UUID (without `ses-`)
   * @throws ApiError 401 `unauthorized` (token unknown, or neither the session's own nor a live
   *   confirmed one), 404 `session_not_found` (no such session, or another user's)
   */
  async revoke(sessionId: string, token: string): Promise<void> {
    const now = this.clock.now();
    const caller = await this.repository.findByTokenHash(hashToken(token));
    if (!caller) throw SessionErrors.unauthorized('unknown');
    if (caller.id !== sessionId) {
      if (!authenticates(caller, now)) throw SessionErrors.unauthorized(unauthorizedReason(caller.status));
      const target = await this.repository.findById(sessionId);
      if (!target || target.userId !== caller.userId) throw SessionErrors.notFound();
    }
    if (await this.repository.revoke(sessionId, now)) {
      this.metrics.sessionsRevoked.inc({ cause: caller.id === sessionId ? 'logout' : 'signed_out_by_user' });
    }
  }
}
