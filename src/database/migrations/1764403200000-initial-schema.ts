import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Users, devices, sessions and the OTP send log, with the unique indexes the rules rely on. */
export class InitialSchema1764403200000 implements MigrationInterface {
  name = 'InitialSchema1764403200000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE users (
        id          uuid PRIMARY KEY,
        email       text NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT users_email_key UNIQUE (email)
      )`);
    await db.query(`
      CREATE TABLE devices (
        id           uuid PRIMARY KEY,
        user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        type         text NOT NULL CHECK (type IN ('mobi', 'othr')),
        vendor_uuid  uuid,
        created_at   timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT devices_identity_key UNIQUE NULLS NOT DISTINCT (user_id, type, vendor_uuid)
      )`);
    await db.query(`
      CREATE TABLE sessions (
        id                 uuid PRIMARY KEY,
        user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        device_id          uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        status             text NOT NULL CHECK (status IN ('pending', 'confirmed', 'expired', 'revoked')),
        token_hash         bytea NOT NULL,
        otp_hash           bytea,
        otp_expires_at     timestamptz NOT NULL,
        otp_attempts_left  smallint NOT NULL CHECK (otp_attempts_left >= 0),
        created_at         timestamptz NOT NULL DEFAULT now(),
        confirmed_at       timestamptz,
        expires_at         timestamptz,
        ended_at           timestamptz,
        client_ip          text,
        user_agent         text,
        last_seen_at       timestamptz,
        CONSTRAINT sessions_token_hash_key UNIQUE (token_hash)
      )`);
    await db.query(`CREATE INDEX sessions_device_id_idx ON sessions (device_id)`);
    await db.query(`CREATE INDEX sessions_user_id_idx ON sessions (user_id)`);
    // One live session per device: at most one confirmed session per device, enforced by PostgreSQL.
    await db.query(
      `CREATE UNIQUE INDEX sessions_one_confirmed_per_device ON sessions (device_id) WHERE status = 'confirmed'`,
    );
    await db.query(`
      CREATE TABLE otp_sends (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        device_id   uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        sent_at     timestamptz NOT NULL
      )`);
    await db.query(`CREATE INDEX otp_sends_user_sent_at_idx ON otp_sends (user_id, sent_at)`);
    await db.query(`CREATE INDEX otp_sends_session_id_idx ON otp_sends (session_id)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE otp_sends`);
    await db.query(`DROP TABLE sessions`);
    await db.query(`DROP TABLE devices`);
    await db.query(`DROP TABLE users`);
  }
}
