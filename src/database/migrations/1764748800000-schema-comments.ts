import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What each table and column means, for whoever browses the database (Adminer, psql `\d+`): the
 * states of a session, that only hashes of the token and the code are stored, the public id
 * prefixes. The same texts are the entities' `comment` options, so the schema drift check
 * (`npm run migration:check`) fails when the two differ (issue #13).
 */
export class SchemaComments1764748800000 implements MigrationInterface {
  name = 'SchemaComments1764748800000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`COMMENT ON TABLE "users" IS 'A person who logs in, identified by a normalized email address. Shown in the API as usr-<id>.'`);
    await db.query(`COMMENT ON TABLE "devices" IS 'One client of a user. Identity is (user_id, type, vendor_uuid), an absent vendor_uuid counting as one value. Shown in the API as dev-<id>.'`);
    await db.query(`COMMENT ON TABLE "sessions" IS 'One login of one device, authenticated by a bearer token once confirmed. Shown in the API as ses-<id>.'`);
    await db.query(`COMMENT ON TABLE "otp_sends" IS 'One login-code email sent or queued. The resend cooldown per device and the hourly cap per address are counted from these rows; the sweep deletes them once no limit looks back that far.'`);
    await db.query(`COMMENT ON COLUMN "users"."id" IS 'Random UUID (v4); the API shows it as usr-<id>.'`);
    await db.query(`COMMENT ON COLUMN "users"."email" IS 'Normalized email address (trimmed, lower-cased): the address login codes are sent to. Unique.'`);
    await db.query(`COMMENT ON COLUMN "users"."created_at" IS 'When the first login of this address created the user.'`);
    await db.query(`COMMENT ON COLUMN "devices"."id" IS 'Random UUID (v4); the API shows it as dev-<id>.'`);
    await db.query(`COMMENT ON COLUMN "devices"."user_id" IS 'The user this device belongs to.'`);
    await db.query(`COMMENT ON COLUMN "devices"."type" IS 'mobi: a mobile app install, identified by vendor_uuid; othr: anything else (browser, desktop app).'`);
    await db.query(`COMMENT ON COLUMN "devices"."vendor_uuid" IS 'The app vendor''s UUID of the install, lower-case; required for mobi, optional for othr.'`);
    await db.query(`COMMENT ON COLUMN "devices"."created_at" IS 'When the first login from this device created it.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."id" IS 'Random UUID (v4); the API shows it as ses-<id>.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."user_id" IS 'The user who logs in.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."device_id" IS 'The device the session belongs to (one live session per device).'`);
    await db.query(`COMMENT ON COLUMN "sessions"."status" IS 'pending: waiting for the emailed code; confirmed: the token authenticates until expires_at; expired: the code, its attempts or the session''s life ran out; revoked: logged out, signed out by the user, or replaced by a newer login of the same device.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."token_hash" IS 'SHA-256 of the bearer token; the token itself is never stored.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."otp_hash" IS 'HMAC-SHA-256 of the login code, keyed with APP_SECRET and bound to the session id; the code itself is never stored. Null once the session is no longer pending.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."otp_expires_at" IS 'When the emailed code stops working.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."otp_attempts_left" IS 'Wrong codes still allowed (OTP_MAX_ATTEMPTS at first); the wrong code that uses the last one expires the session.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."created_at" IS 'When the login started (POST /sessions).'`);
    await db.query(`COMMENT ON COLUMN "sessions"."confirmed_at" IS 'When the right code was entered; null until then.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."expires_at" IS 'End of a confirmed session''s life (OTHR_SESSION_TTL, MOBI_SESSION_TTL); null: no expiry.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."ended_at" IS 'When the session became expired or revoked; deleted SESSION_RETENTION_DAYS later.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."client_ip" IS 'IP address of the client that started the login.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."user_agent" IS 'User-Agent header of the request that started the login, at most 512 characters.'`);
    await db.query(`COMMENT ON COLUMN "sessions"."last_seen_at" IS 'Last use of the token, refreshed at most once a minute.'`);
    await db.query(`COMMENT ON COLUMN "otp_sends"."id" IS 'Sequence number.'`);
    await db.query(`COMMENT ON COLUMN "otp_sends"."user_id" IS 'The user (email address) the code was sent to.'`);
    await db.query(`COMMENT ON COLUMN "otp_sends"."device_id" IS 'The device that asked for the code.'`);
    await db.query(`COMMENT ON COLUMN "otp_sends"."session_id" IS 'The pending session the code is for.'`);
    await db.query(`COMMENT ON COLUMN "otp_sends"."sent_at" IS 'When the send was accepted (the request time).'`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`COMMENT ON COLUMN "otp_sends"."sent_at" IS NULL`);
    await db.query(`COMMENT ON COLUMN "otp_sends"."session_id" IS NULL`);
    await db.query(`COMMENT ON COLUMN "otp_sends"."device_id" IS NULL`);
    await db.query(`COMMENT ON COLUMN "otp_sends"."user_id" IS NULL`);
    await db.query(`COMMENT ON COLUMN "otp_sends"."id" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."last_seen_at" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."user_agent" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."client_ip" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."ended_at" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."expires_at" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."confirmed_at" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."created_at" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."otp_attempts_left" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."otp_expires_at" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."otp_hash" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."token_hash" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."status" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."device_id" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."user_id" IS NULL`);
    await db.query(`COMMENT ON COLUMN "sessions"."id" IS NULL`);
    await db.query(`COMMENT ON COLUMN "devices"."created_at" IS NULL`);
    await db.query(`COMMENT ON COLUMN "devices"."vendor_uuid" IS NULL`);
    await db.query(`COMMENT ON COLUMN "devices"."type" IS NULL`);
    await db.query(`COMMENT ON COLUMN "devices"."user_id" IS NULL`);
    await db.query(`COMMENT ON COLUMN "devices"."id" IS NULL`);
    await db.query(`COMMENT ON COLUMN "users"."created_at" IS NULL`);
    await db.query(`COMMENT ON COLUMN "users"."email" IS NULL`);
    await db.query(`COMMENT ON COLUMN "users"."id" IS NULL`);
    await db.query(`COMMENT ON TABLE "otp_sends" IS NULL`);
    await db.query(`COMMENT ON TABLE "sessions" IS NULL`);
    await db.query(`COMMENT ON TABLE "devices" IS NULL`);
    await db.query(`COMMENT ON TABLE "users" IS NULL`);
  }
}
