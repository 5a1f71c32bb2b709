import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `confirm_session(...)`: PATCH /sessions/{uuid} in one statement (one round trip, one implicit
 * transaction) instead of six (BEGIN, two locks, two writes, COMMIT). It locks the device, then the
 * session (the order the resend path uses too, so confirms of two sessions of one device queue up
 * instead of deadlocking when each revokes the other), checks the token, applies SPEC's state
 * machine and writes its outcome. PL/pgSQL because every statement of a volatile function takes a
 * fresh snapshot under READ COMMITTED: the session row is read after the device lock was granted,
 * so concurrent confirms see each other's writes and attempts are counted exactly.
 *
 * The caller passes hashes, never secrets: `p_token_hash` (SHA-256 of the bearer token) and
 * `p_otp_hash` (HMAC-SHA-256 of the submitted code for this session, keyed with APP_SECRET, which
 * PostgreSQL never sees), and the `expires_at` a confirm would set for each device type
 * (confirmedExpiry in session-rules.ts). Comparing the HMACs with `=` leaks nothing usable: without
 * the key, an attacker cannot choose the bytes being compared.
 *
 * Outcomes: `not_found`, `unauthorized` (another session's token), `confirmed`, `already_confirmed`,
 * `otp_invalid` (attempt counted; the last one expires the session), `otp_expired`,
 * `confirmed_session_expired`, `otp_attempts_exceeded`, `session_expired`, `session_revoked`.
 */
export class ConfirmSessionFunction1764662400000 implements MigrationInterface {
  name = 'ConfirmSessionFunction1764662400000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE FUNCTION confirm_session(
        p_session_id uuid, p_token_hash bytea, p_otp_hash bytea, p_now timestamptz,
        p_othr_expires_at timestamptz, p_mobi_expires_at timestamptz)
      RETURNS TABLE (outcome text, "revokedOthers" integer,
                     id uuid, status text, "tokenHash" bytea, "otpHash" bytea, "otpExpiresAt" timestamptz,
                     "otpAttemptsLeft" smallint, "createdAt" timestamptz, "confirmedAt" timestamptz,
                     "expiresAt" timestamptz, "clientIp" text, "userAgent" text, "lastSeenAt" timestamptz,
                     "userId" uuid, email text, "deviceId" uuid, "deviceType" text, "vendorUuid" uuid)
      LANGUAGE plpgsql AS $$
      DECLARE
        s sessions%ROWTYPE;
        v_device_type text;
        v_outcome text;
        v_revoked integer := 0;
      BEGIN
        SELECT d.type INTO v_device_type FROM devices d
         WHERE d.id = (SELECT x.device_id FROM sessions x WHERE x.id = p_session_id) FOR NO KEY UPDATE;
        IF FOUND THEN
          SELECT * INTO s FROM sessions x WHERE x.id = p_session_id FOR UPDATE;
        END IF;
        IF s.id IS NULL THEN
          outcome := 'not_found';
          RETURN NEXT;
          RETURN;
        END IF;
        IF s.token_hash <> p_token_hash THEN
          outcome := 'unauthorized';
          RETURN NEXT;
          RETURN;
        END IF;

        CASE s.status
          WHEN 'pending' THEN
            IF s.otp_attempts_left <= 0 THEN
              v_outcome := 'otp_attempts_exceeded';
            ELSIF s.otp_expires_at <= p_now THEN
              UPDATE sessions x SET status = 'expired', otp_hash = NULL, ended_at = p_now WHERE x.id = s.id;
              v_outcome := 'otp_expired';
            ELSIF s.otp_hash = p_otp_hash THEN
              -- One live session per device: the others go first (the unique index on confirmed sessions).
              UPDATE sessions x SET status = 'revoked', otp_hash = NULL, ended_at = p_now
               WHERE x.device_id = s.device_id AND x.id <> s.id AND x.status IN ('pending', 'confirmed');
              GET DIAGNOSTICS v_revoked = ROW_COUNT;
              UPDATE sessions x SET status = 'confirmed', confirmed_at = p_now, otp_hash = NULL,
                     expires_at = CASE WHEN v_device_type = 'othr' THEN p_othr_expires_at ELSE p_mobi_expires_at END
               WHERE x.id = s.id;
              v_outcome := 'confirmed';
            ELSE
              UPDATE sessions x
                 SET otp_attempts_left = s.otp_attempts_left - 1,
                     status = CASE WHEN s.otp_attempts_left = 1 THEN 'expired' ELSE x.status END,
                     otp_hash = CASE WHEN s.otp_attempts_left = 1 THEN NULL ELSE x.otp_hash END,
                     ended_at = CASE WHEN s.otp_attempts_left = 1 THEN p_now ELSE x.ended_at END
               WHERE x.id = s.id;
              v_outcome := 'otp_invalid';
            END IF;
          WHEN 'confirmed' THEN
            IF s.expires_at IS NOT NULL AND s.expires_at <= p_now THEN
              UPDATE sessions x SET status = 'expired', otp_hash = NULL, ended_at = p_now WHERE x.id = s.id;
              v_outcome := 'confirmed_session_expired';
            ELSE
              v_outcome := 'already_confirmed';
            END IF;
          WHEN 'expired' THEN
            -- A session ended by its last wrong code keeps answering with the reason it ended.
            v_outcome := CASE WHEN s.otp_attempts_left = 0 THEN 'otp_attempts_exceeded' ELSE 'session_expired' END;
          ELSE
            v_outcome := 'session_revoked';
        END CASE;

        RETURN QUERY
          SELECT v_outcome, v_revoked,
                 x.id, x.status, x.token_hash, x.otp_hash, x.otp_expires_at, x.otp_attempts_left, x.created_at,
                 x.confirmed_at, x.expires_at, x.client_ip, x.user_agent, x.last_seen_at,
                 u.id, u.email, d.id, d.type, d.vendor_uuid
            FROM sessions x JOIN users u ON u.id = x.user_id JOIN devices d ON d.id = x.device_id
           WHERE x.id = s.id;
      END $$`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP FUNCTION confirm_session`);
  }
}
