import type { MigrationInterface, QueryRunner } from 'typeorm';
import { StartLoginFunction1764576000000 } from './1764576000000-start-login-function.js';

/**
 * Issue #16: the login no longer writes into the mail queue library's private tables.
 *
 * - `mail_outbox`: one row per session whose code mail is not settled yet (transactional outbox).
 *   The login and resend statements write it in their own transaction; OtpMailRelay hands the rows
 *   to graphile-worker through its documented `graphile_worker.add_jobs()`; the worker task deletes
 *   the row once the mail is sent or given up. `revision` tells a resent mail from the one it
 *   replaced, so that the worker of the old mail cannot delete the new one.
 * - `sessions.locale`: the BCP 47 language tag (RFC 5646) the code mail is written in; a resend
 *   uses the session's.
 * - `send_otp(...)`: the send limits (per-device cooldown, per-address hourly cap), decided once for
 *   a new login and for a resend: locks the user, decides, records the send and queues the mail;
 *   returns the refusal and the seconds until a send would be accepted (Retry-After).
 * - `session_is_usable(...)`: "still usable" (SPEC: reuse), the one definition every query uses.
 * - `start_login(...)` is recreated on top of `send_otp` (new parameters: locale, the limits in
 *   seconds and sends per hour, the sealed mail), and `enqueue_otp_mail` (pg-boss's table) dropped.
 *
 * Mail that pg-boss still held when this migration ran stays in the `pgboss` schema, unsent (see
 * README "Upgrading"); this migration never touches that schema.
 */
export class MailOutbox1764835200000 implements MigrationInterface {
  name = 'MailOutbox1764835200000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      ALTER TABLE sessions ADD COLUMN locale text NOT NULL DEFAULT 'en'
        CONSTRAINT sessions_locale_check CHECK (locale ~ '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$' AND length(locale) <= 35)`);
    await db.query(`
      CREATE TABLE mail_outbox (
        session_id      uuid PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
        revision        integer NOT NULL DEFAULT 1,
        payload         jsonb NOT NULL,
        expires_at      timestamptz NOT NULL,
        queued_at       timestamptz NOT NULL,
        handed_over_at  timestamptz
      )`);
    await db.query(`CREATE INDEX mail_outbox_waiting_idx ON mail_outbox (queued_at) WHERE handed_over_at IS NULL`);
    await db.query(`CREATE INDEX mail_outbox_expires_at_idx ON mail_outbox (expires_at)`);
    await db.query(`COMMENT ON TABLE mail_outbox IS 'Login-code mails not settled yet (transactional outbox): written with the session, handed to graphile-worker by the relay, deleted once sent or given up.'`);
    await db.query(`COMMENT ON COLUMN mail_outbox.session_id IS 'The session whose code this mail carries; one mail per session.'`);
    await db.query(`COMMENT ON COLUMN mail_outbox.revision IS '1, plus one per resend that replaced the mail; the worker deletes only the revision it sent.'`);
    await db.query(`COMMENT ON COLUMN mail_outbox.payload IS 'Recipient, the code sealed with AES-256-GCM (key from APP_SECRET, bound to the session), its expiry and lifetime.'`);
    await db.query(`COMMENT ON COLUMN mail_outbox.expires_at IS 'When the code stops working; the sweep drops the mail after it.'`);
    await db.query(`COMMENT ON COLUMN mail_outbox.queued_at IS 'When the login or resend queued the mail.'`);
    await db.query(`COMMENT ON COLUMN mail_outbox.handed_over_at IS 'When the relay queued it in graphile-worker; null while it waits here.'`);
    await db.query(`COMMENT ON COLUMN sessions.locale IS 'BCP 47 language tag (RFC 5646) of the code mail; a resend uses it too.'`);

    await db.query(`
      CREATE FUNCTION session_is_usable(
        p_status text, p_otp_expires_at timestamptz, p_otp_attempts_left smallint, p_expires_at timestamptz,
        p_at timestamptz) RETURNS boolean
      LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE p_status
                 WHEN 'confirmed' THEN p_expires_at IS NULL OR p_expires_at > p_at
                 WHEN 'pending' THEN p_otp_expires_at > p_at AND p_otp_attempts_left > 0
                 ELSE false
               END
      $$`);

    await db.query(`
      CREATE FUNCTION send_otp(
        p_user_id uuid, p_device_id uuid, p_session_id uuid, p_now timestamptz,
        p_resend_cooldown integer, p_max_sends_per_hour integer, p_mail jsonb, p_mail_expires_at timestamptz)
      RETURNS TABLE (refusal text, "retryAfter" integer)
      LANGUAGE plpgsql AS $$
      DECLARE
        hour_ago constant timestamptz := p_now - interval '1 hour';
        cooldown_since constant timestamptz := p_now - p_resend_cooldown * interval '1 second';
        last_device_send timestamptz;
        sends_in_hour integer;
        oldest_in_hour timestamptz;
      BEGIN
        -- One address's sends are decided one at a time (login and resend alike); the history is
        -- read after the lock, with this statement's fresh snapshot.
        PERFORM 1 FROM users WHERE id = p_user_id FOR NO KEY UPDATE;
        SELECT max(o.sent_at) FILTER (WHERE o.device_id = p_device_id),
               (count(*) FILTER (WHERE o.sent_at > hour_ago))::integer,
               min(o.sent_at) FILTER (WHERE o.sent_at > hour_ago)
          INTO last_device_send, sends_in_hour, oldest_in_hour
          FROM otp_sends o WHERE o.user_id = p_user_id AND o.sent_at > LEAST(hour_ago, cooldown_since);

        IF p_resend_cooldown > 0 AND last_device_send > cooldown_since THEN
          refusal := 'cooldown';
          "retryAfter" := GREATEST(1, ceil(extract(epoch FROM last_device_send + p_resend_cooldown * interval '1 second' - p_now)))::integer;
        ELSIF sends_in_hour >= p_max_sends_per_hour THEN
          refusal := 'hourly_cap';
          "retryAfter" := GREATEST(1, ceil(extract(epoch FROM COALESCE(oldest_in_hour, p_now) + interval '1 hour' - p_now)))::integer;
        ELSE
          INSERT INTO otp_sends (user_id, device_id, session_id, sent_at) VALUES (p_user_id, p_device_id, p_session_id, p_now);
          -- A resend replaces the session's mail if it is still waiting here; if it was handed over
          -- already, the relay hands it over again and the job of the old revision sends nothing.
          INSERT INTO mail_outbox AS m (session_id, payload, expires_at, queued_at)
          VALUES (p_session_id, p_mail, p_mail_expires_at, p_now)
          ON CONFLICT (session_id) DO UPDATE
            SET revision = m.revision + 1, payload = EXCLUDED.payload, expires_at = EXCLUDED.expires_at,
                queued_at = EXCLUDED.queued_at, handed_over_at = NULL;
        END IF;
        RETURN NEXT;
      END $$`);

    await db.query(`DROP FUNCTION start_login`);
    await db.query(`DROP FUNCTION enqueue_otp_mail`);
    await db.query(`
      CREATE FUNCTION start_login(
        p_user_id uuid, p_email text, p_device_id uuid, p_device_type text, p_vendor_uuid uuid, p_now timestamptz,
        p_session_id uuid, p_token_hash bytea, p_otp_hash bytea, p_otp_expires_at timestamptz,
        p_otp_attempts smallint, p_client_ip text, p_user_agent text, p_locale text,
        p_resend_cooldown integer, p_max_sends_per_hour integer, p_mail jsonb)
      RETURNS TABLE ("userId" uuid, "deviceId" uuid, "isNewUser" boolean, "isNewDevice" boolean,
                     refusal text, "retryAfter" integer)
      LANGUAGE plpgsql AS $$
      BEGIN
        -- Find or create the user and the device; the user's row stays locked until the end.
        WITH u AS (
          INSERT INTO users (id, email, created_at) VALUES (p_user_id, p_email, p_now)
          ON CONFLICT ON CONSTRAINT users_email_key DO UPDATE SET email = EXCLUDED.email
          RETURNING id, (xmax = 0) AS inserted
        ), d AS (
          INSERT INTO devices (id, user_id, type, vendor_uuid, created_at)
          SELECT p_device_id, u.id, p_device_type, p_vendor_uuid, p_now FROM u
          ON CONFLICT ON CONSTRAINT devices_identity_key DO UPDATE SET type = EXCLUDED.type
          RETURNING id, (xmax = 0) AS inserted
        )
        SELECT u.id, d.id, u.inserted, d.inserted INTO "userId", "deviceId", "isNewUser", "isNewDevice" FROM u, d;

        INSERT INTO sessions (id, user_id, device_id, status, token_hash, otp_hash, otp_expires_at,
                              otp_attempts_left, created_at, client_ip, user_agent, locale)
        VALUES (p_session_id, "userId", "deviceId", 'pending', p_token_hash, p_otp_hash, p_otp_expires_at,
                p_otp_attempts, p_now, p_client_ip, p_user_agent, p_locale);

        SELECT s.refusal, s."retryAfter" INTO refusal, "retryAfter"
          FROM send_otp("userId", "deviceId", p_session_id, p_now, p_resend_cooldown, p_max_sends_per_hour,
                        p_mail, p_otp_expires_at) s;

        -- A refused login leaves nothing behind (the deletes cascade to the session).
        IF refusal IS NOT NULL THEN
          IF "isNewUser" THEN
            DELETE FROM users WHERE id = "userId";
          ELSIF "isNewDevice" THEN
            DELETE FROM devices WHERE id = "deviceId";
          ELSE
            DELETE FROM sessions WHERE id = p_session_id;
          END IF;
        END IF;
        RETURN NEXT;
      END $$`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP FUNCTION start_login`);
    await db.query(`DROP FUNCTION send_otp`);
    await db.query(`DROP FUNCTION session_is_usable`);
    await db.query(`DROP TABLE mail_outbox`);
    await db.query(`ALTER TABLE sessions DROP COLUMN locale`);
    // The functions as the previous migration created them (they need pg-boss's schema at first call).
    await new StartLoginFunction1764576000000().up(db);
  }
}
