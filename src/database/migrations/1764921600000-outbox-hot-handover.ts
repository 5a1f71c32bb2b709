import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The relay's hand-over (`handed_over_at = now()`) becomes a heap-only (HOT) update: PostgreSQL
 * writes no index entry for an update that changes no indexed column, but a column in a partial
 * index's WHERE counts as indexed, so `mail_outbox_waiting_idx (queued_at) WHERE handed_over_at IS
 * NULL` made every hand-over write a new entry in each of the table's three indexes. The relay finds
 * the rows of its own logins by primary key; its once-a-second look for anyone's oldest waiting rows
 * reads the table instead (it holds only the mails not settled yet). A fill factor of 50 leaves room
 * on each page for the new row versions, which HOT needs.
 */
export class OutboxHotHandover1764921600000 implements MigrationInterface {
  name = 'OutboxHotHandover1764921600000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX mail_outbox_waiting_idx`);
    await db.query(`ALTER TABLE mail_outbox SET (fillfactor = 50)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE mail_outbox RESET (fillfactor)`);
    await db.query(`CREATE INDEX mail_outbox_waiting_idx ON mail_outbox (queued_at) WHERE handed_over_at IS NULL`);
  }
}
