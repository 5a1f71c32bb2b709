import { ApiError } from '../../src/common/api-error.js';
import { OtpMailQueue } from '../../src/mail/otp-mail.queue.js';
import { MetricsService } from '../../src/metrics/metrics.service.js';
import { SessionsService } from '../../src/sessions/sessions.service.js';
import { createMediumModule, insertSession, type MediumContext, sessionRow } from './medium-module.js';

/**
 * SPEC's PATCH /sessions/{uuid} state machine, on SessionsService with the real repository and
 * `confirm_session` in PostgreSQL (no HTTP): every state, the boundaries of the code's expiry and of
 * the attempts, and what each outcome writes.
 */
describe('SessionsService.confirm (medium: real PostgreSQL, no HTTP)', () => {
  let ctx: MediumContext;
  let service: SessionsService;
  const OTHR_TTL = 7_200;

  beforeAll(async () => {
    ctx = await createMediumModule([SessionsService], { stubs: [{ provide: OtpMailQueue, useValue: {} }] });
    service = ctx.get(SessionsService);
  });
  afterAll(() => ctx.close());

  const wrong = (code: string) => (code === '000000' ? '111111' : '000000');

  /** The ApiError `confirm` throws, as `{status, code, extra}`; fails when it resolves. */
  async function refusal(id: string, token: string, code: string) {
    const error = await service.confirm(id, token, code).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ApiError);
    const { status, code: errorCode, details } = error as ApiError;
    return { status, code: errorCode, extra: details };
  }

  describe('pending', () => {
    it('confirms with the right code: confirmed_at now, othr expires after OTHR_SESSION_TTL, the code erased', async () => {
      const s = await insertSession(ctx, { type: 'othr' });
      const now = ctx.clock.now();
      const issued = await service.confirm(s.id, s.token, s.code);
      expect(issued.session).toMatchObject({ id: s.id, status: 'confirmed', confirmedAt: now, device: { type: 'othr' } });
      expect(issued.session.expiresAt).toEqual(new Date(now.getTime() + OTHR_TTL * 1000));
      expect(await sessionRow(ctx, s.id)).toMatchObject({ status: 'confirmed', otp_hash: null, confirmed_at: now });
    });

    it('a mobi session confirmed without MOBI_SESSION_TTL never expires', async () => {
      const s = await insertSession(ctx, { type: 'mobi' });
      expect((await service.confirm(s.id, s.token, s.code)).session.expiresAt).toBeNull();
    });

    it("revokes the device's other pending and confirmed sessions, and only those", async () => {
      const s = await insertSession(ctx, { type: 'mobi' });
      const olderPending = await insertSession(ctx, { userId: s.userId, deviceId: s.deviceId });
      const olderConfirmed = await insertSession(ctx, { userId: s.userId, deviceId: s.deviceId, status: 'confirmed' });
      const otherDevice = await insertSession(ctx, { type: 'mobi' });
      const revoked = ctx.get(MetricsService).sessionsRevoked;
      const before = (await revoked.get()).values.find((v) => v.labels.cause === 'replaced_on_device')?.value ?? 0;
      await service.confirm(s.id, s.token, s.code);
      expect((await sessionRow(ctx, olderPending.id)).status).toBe('revoked');
      expect((await sessionRow(ctx, olderConfirmed.id)).status).toBe('revoked');
      expect((await sessionRow(ctx, otherDevice.id)).status).toBe('pending');
      const after = (await revoked.get()).values.find((v) => v.labels.cause === 'replaced_on_device')?.value;
      expect(after).toBe(before + 2);
    });

    it('counts a wrong code as an attempt: otp_invalid with attempts_remaining 4', async () => {
      const s = await insertSession(ctx);
      expect(await refusal(s.id, s.token, wrong(s.code))).toEqual({ status: 400, code: 'otp_invalid', extra: { attempts_remaining: 4 } });
      expect(await sessionRow(ctx, s.id)).toMatchObject({ status: 'pending', otp_attempts_left: 4 });
    });

    it('a wrong code using the last attempt leaves 0 and expires the session (code erased, ended_at set)', async () => {
      const s = await insertSession(ctx, { otpAttemptsLeft: 1 });
      expect(await refusal(s.id, s.token, wrong(s.code))).toEqual({ status: 400, code: 'otp_invalid', extra: { attempts_remaining: 0 } });
      expect(await sessionRow(ctx, s.id)).toMatchObject({ status: 'expired', otp_attempts_left: 0, otp_hash: null, ended_at: ctx.clock.now() });
    });

    it('the right code on the last attempt confirms', async () => {
      const s = await insertSession(ctx, { otpAttemptsLeft: 1 });
      expect((await service.confirm(s.id, s.token, s.code)).session.status).toBe('confirmed');
    });

    it('answers otp_expired once the code expired (boundary: expiring now counts), even with the right code, and expires the session', async () => {
      const s = await insertSession(ctx, { otpExpiresAt: ctx.clock.now() });
      expect(await refusal(s.id, s.token, s.code)).toMatchObject({ status: 400, code: 'otp_expired' });
      expect(await sessionRow(ctx, s.id)).toMatchObject({ status: 'expired', otp_attempts_left: 5, otp_hash: null });
      // This once: later it is an ended session.
      expect(await refusal(s.id, s.token, s.code)).toMatchObject({ status: 400, code: 'session_expired' });
    });

    it('checks the code 1 ms before it expires', async () => {
      const s = await insertSession(ctx, { otpExpiresAt: new Date(ctx.clock.now().getTime() + 1) });
      expect((await service.confirm(s.id, s.token, s.code)).session.status).toBe('confirmed');
    });

    it('with no attempts left: otp_attempts_exceeded without counting or changing anything', async () => {
      const s = await insertSession(ctx, { otpAttemptsLeft: 0 });
      const before = await sessionRow(ctx, s.id);
      expect(await refusal(s.id, s.token, s.code)).toMatchObject({ status: 400, code: 'otp_attempts_exceeded' });
      expect(await sessionRow(ctx, s.id)).toEqual(before);
    });

    it('exhausted attempts win over an expired code', async () => {
      const s = await insertSession(ctx, { otpAttemptsLeft: 0, otpExpiresAt: new Date(ctx.clock.now().getTime() - 1000) });
      expect(await refusal(s.id, s.token, s.code)).toMatchObject({ code: 'otp_attempts_exceeded' });
    });
  });

  describe('confirmed', () => {
    it.each([[null], [60_000]])('answers 200 unchanged for any code (expires_at in %s ms)', async (inMs) => {
      const expiresAt = inMs === null ? null : new Date(ctx.clock.now().getTime() + inMs);
      const s = await insertSession(ctx, { status: 'confirmed', expiresAt });
      const before = await sessionRow(ctx, s.id);
      expect((await service.confirm(s.id, s.token, '123456')).session).toMatchObject({ status: 'confirmed', expiresAt });
      expect(await sessionRow(ctx, s.id)).toEqual(before);
    });

    it('counts as expired at expires_at (boundary included), and is marked expired', async () => {
      const s = await insertSession(ctx, { status: 'confirmed', expiresAt: ctx.clock.now() });
      expect(await refusal(s.id, s.token, '123456')).toMatchObject({ status: 400, code: 'session_expired' });
      expect(await sessionRow(ctx, s.id)).toMatchObject({ status: 'expired', ended_at: ctx.clock.now() });
    });
  });

  describe('ended', () => {
    it('expired with attempts left (code timed out): session_expired', async () => {
      const s = await insertSession(ctx, { status: 'expired', otpAttemptsLeft: 3 });
      expect(await refusal(s.id, s.token, s.code)).toMatchObject({ status: 400, code: 'session_expired' });
    });

    it('expired by its last wrong code: otp_attempts_exceeded, even with the right code', async () => {
      const s = await insertSession(ctx, { status: 'expired', otpAttemptsLeft: 0 });
      expect(await refusal(s.id, s.token, s.code)).toMatchObject({ status: 400, code: 'otp_attempts_exceeded' });
    });

    it('revoked: session_revoked, and the row is untouched', async () => {
      const s = await insertSession(ctx, { status: 'revoked' });
      const before = await sessionRow(ctx, s.id);
      expect(await refusal(s.id, s.token, s.code)).toMatchObject({ status: 400, code: 'session_revoked' });
      expect(await sessionRow(ctx, s.id)).toEqual(before);
    });
  });

  describe('existence and token, before the state', () => {
    it('an unknown session: 404 session_not_found', async () => {
      const s = await insertSession(ctx);
      expect(await refusal('0f8fad5b-d9cb-469f-a165-70867728950e', s.token, s.code)).toMatchObject({ status: 404, code: 'session_not_found' });
    });

    it("another session's token: 401, no attempt counted, even on an ended session", async () => {
      const s = await insertSession(ctx);
      const other = await insertSession(ctx);
      const ended = await insertSession(ctx, { status: 'revoked' });
      expect(await refusal(s.id, other.token, wrong(s.code))).toMatchObject({ status: 401, code: 'unauthorized' });
      expect(await refusal(ended.id, other.token, s.code)).toMatchObject({ status: 401, code: 'unauthorized' });
      expect((await sessionRow(ctx, s.id)).otp_attempts_left).toBe(5);
    });
  });
});
