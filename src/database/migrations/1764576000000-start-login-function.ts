import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `start_login(...)`: POST /sessions for a new session in one statement (one round trip, one
 * implicit transaction) instead of six, and `enqueue_otp_mail(queue, data)`: the mail job insert it
 * shares with the resend path. PL/pgSQL rather than one SQL statement because the send limits must be
 * read after the user's row is locked, with a fresh snapshot (READ COMMITTED gives every statement of
 * a volatile function its own), so that concurrent logins of one address count each other's sends.
 * The job row mirrors what pg-boss 10's `send()` inserts for a queue's defaults (pgboss.queue); the
 * bodies are only resolved at the first call, after pg-boss has created its schema.
 */
export class StartLoginFunction1764576000000 implements MigrationInterface {
  name = 'StartLoginFunction1764576000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE FUNCTION enqueue_otp_mail(p_queue text, p_data jsonb) RETURNS void
      LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO pgboss.job (name, data, expire_in, keep_until, retry_limit, retry_delay, retry_backoff, policy, dead_letter)
        SELECT q.name, p_data,
               COALESCE(q.expire_seconds * interval '1 second', interval '15 minutes'),
               now() + COALESCE(q.retention_minutes * interval '1 minute', interval '14 days'),
               q.retry_limit,
               CASE WHEN q.retry_backoff THEN GREATEST(q.retry_delay, 1) ELSE q.retry_delay END,
               q.retry_backoff, q.policy, q.dead_letter
          FROM pgboss.queue q WHERE q.name = p_queue;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'mail queue "%" does not exist', p_queue;
        END IF;
      END $$`);
    await db.query(`
      CREATE FUNCTION start_login(
        p_user_id uuid, p_email text, p_device_id uuid, p_device_type text, p_vendor_uuid uuid, p_now timestamptz,
        p_session_id uuid, p_token_hash bytea, p_otp_hash bytea, p_otp_expires_at timestamptz,
        p_otp_attempts smallint, p_client_ip text, p_user_agent text,
        p_history_since timestamptz, p_hour_ago timestamptz, p_cooldown_since timestamptz,
        p_max_sends_per_hour integer, p_mail_queue text, p_mail_data jsonb)
      RETURNS TABLE ("userId" uuid, "deviceId" uuid, "isNewUser" boolean, "isNewDevice" boolean,
                     "lastDeviceSendAt" timestamptz, "sendsInLastHour" integer,
                     "oldestSendInLastHourAt" timestamptz, created boolean)
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

        SELECT max(o.sent_at) FILTER (WHERE o.device_id = "deviceId"),
               (count(*) FILTER (WHERE o.sent_at > p_hour_ago))::integer,
               min(o.sent_at) FILTER (WHERE o.sent_at > p_hour_ago)
          INTO "lastDeviceSendAt", "sendsInLastHour", "oldestSendInLastHourAt"
          FROM otp_sends o WHERE o.user_id = "userId" AND o.sent_at > p_history_since;

        -- The send limits (sendWindow in session-rules.ts gives the thresholds).
        created := NOT (COALESCE("lastDeviceSendAt" > p_cooldown_since, false)
                        OR "sendsInLastHour" >= p_max_sends_per_hour);
        IF created THEN
          INSERT INTO sessions (id, user_id, device_id, status, token_hash, otp_hash, otp_expires_at,
                                otp_attempts_left, created_at, client_ip, user_agent)
          VALUES (p_session_id, "userId", "deviceId", 'pending', p_token_hash, p_otp_hash, p_otp_expires_at,
                  p_otp_attempts, p_now, p_client_ip, p_user_agent);
          INSERT INTO otp_sends (user_id, device_id, session_id, sent_at)
          VALUES ("userId", "deviceId", p_session_id, p_now);
          PERFORM enqueue_otp_mail(p_mail_queue, p_mail_data);
        ELSIF "isNewUser" THEN -- a refused login leaves nothing behind
          DELETE FROM users WHERE id = "userId";
        ELSIF "isNewDevice" THEN
          DELETE FROM devices WHERE id = "deviceId";
        END IF;
        RETURN NEXT;
      END $$`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP FUNCTION start_login`);
    await db.query(`DROP FUNCTION enqueue_otp_mail`);
  }
}
