import { Column, Entity, Index, JoinColumn, OneToOne, PrimaryColumn } from 'typeorm';
import { Session } from '../sessions/entities/session.entity.js';

/**
 * A login-code mail not settled yet (transactional outbox, migration 1764835200000): written by
 * `send_otp` in the transaction of the login or resend, handed to graphile-worker by OtpMailRelay,
 * deleted by the worker once the mail is sent or given up, or by the sweep once its code expired.
 * The code in `payload` is sealed (AES-256-GCM, src/security/sealed-box.ts). No index names
 * `handed_over_at`, so that the relay's hand-over is a heap-only update, and the table's fill factor
 * is 50 (migration 1764921600000; TypeORM has no entity option for a table's storage parameters).
 */
@Entity({
  name: 'mail_outbox',
  comment:
    'Login-code mails not settled yet (transactional outbox): written with the session, handed to graphile-worker by the relay, deleted once sent or given up.',
})
@Index('mail_outbox_expires_at_idx', ['expiresAt'])
export class MailOutbox {
  @PrimaryColumn({ name: 'session_id', type: 'uuid', comment: 'The session whose code this mail carries; one mail per session.' })
  sessionId: string;

  @OneToOne(() => Session, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'mail_outbox_session_id_fkey' })
  session?: Session;

  /** 1, plus one per resend that replaced the mail; the worker deletes only the revision it sent. */
  @Column({ type: 'integer', default: 1, comment: '1, plus one per resend that replaced the mail; the worker deletes only the revision it sent.' })
  revision: number;

  /** The mail job without its session id and revision (OtpMailPayload), the code sealed. */
  @Column({
    type: 'jsonb',
    comment: 'Recipient, the code sealed with AES-256-GCM (key from APP_SECRET, bound to the session), its expiry and lifetime.',
  })
  payload: object;

  /** When the code stops working; the mail is useless after it. */
  @Column({ name: 'expires_at', type: 'timestamptz', comment: 'When the code stops working; the sweep drops the mail after it.' })
  expiresAt: Date;

  @Column({ name: 'queued_at', type: 'timestamptz', comment: 'When the login or resend queued the mail.' })
  queuedAt: Date;

  /** When the relay gave it to graphile-worker; null while it waits here. */
  @Column({
    name: 'handed_over_at',
    type: 'timestamptz',
    nullable: true,
    comment: 'When the relay queued it in graphile-worker; null while it waits here.',
  })
  handedOverAt: Date | null;
}
