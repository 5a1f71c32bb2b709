import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Partial indexes that let the expiry sweep find its rows without scanning the table. */
export class SweepIndexes1764489600000 implements MigrationInterface {
  name = 'SweepIndexes1764489600000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`CREATE INDEX sessions_pending_otp_expires_at_idx ON sessions (otp_expires_at) WHERE status = 'pending'`);
    await db.query(`CREATE INDEX sessions_confirmed_expires_at_idx ON sessions (expires_at) WHERE status = 'confirmed'`);
    await db.query(`CREATE INDEX sessions_ended_at_idx ON sessions (ended_at) WHERE status IN ('expired', 'revoked')`);
    await db.query(`CREATE INDEX otp_sends_sent_at_idx ON otp_sends (sent_at)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX otp_sends_sent_at_idx`);
    await db.query(`DROP INDEX sessions_ended_at_idx`);
    await db.query(`DROP INDEX sessions_confirmed_expires_at_idx`);
    await db.query(`DROP INDEX sessions_pending_otp_expires_at_idx`);
  }
}
