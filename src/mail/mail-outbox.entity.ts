import { Column, Entity, Index, JoinColumn, OneToOne, PrimaryColumn } from 'typeorm';
import { Session } from '../sessions/entities/session.entity.js';

/**
 * A login-code mail not settled yet (transactional outbox, migration 1764835200000): written by
 * `send_otp` in the transaction of the login or resend, handed to graphile-worker by OtpMailRelay,
 * deleted by the worker once the mail is sent or given up, or by the sweep once its code expired.
 * The code in `payload` is sealed (AES-256-GCM, src/security/sealed-box.ts).
 */
@Entity({ name: 'mail_outbox' })
@Index('mail_outbox_waiting_idx', ['queuedAt'], { where: 'handed_over_at IS NULL' })
@Index('mail_outbox_expires_at_idx', ['expiresAt'])
export class MailOutbox {
  @PrimaryColumn({ name: 'session_id', type: 'uuid' })
  sessionId: string;

  @OneToOne(() => Session, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id' })
  session?: Session;

  /** 1, plus one per resend that replaced the mail; the worker deletes only the revision it sent. */
  @Column({ type: 'integer', default: 1 })
  revision: number;

  /** The mail job without its session id and revision (OtpMailPayload), the code sealed. */
  @Column({ type: 'jsonb' })
  payload: object;

  /** When the code stops working; the mail is useless after it. */
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Column({ name: 'queued_at', type: 'timestamptz' })
  queuedAt: Date;

  /** When the relay gave it to graphile-worker; null while it waits here. */
  @Column({ name: 'handed_over_at', type: 'timestamptz', nullable: true })
  handedOverAt: Date | null;
}
