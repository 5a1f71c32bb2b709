import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { Device } from './device.entity.js';
import { User } from './user.entity.js';

export const SESSION_STATUSES = ['pending', 'confirmed', 'expired', 'revoked'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/**
 * One login of one device. Public id `ses-<uuid>`. Secrets are never stored in clear:
 * `token_hash` is SHA-256 of the bearer token, `otp_hash` an HMAC-SHA-256 of the code (cleared once
 * the session leaves `pending`).
 */
@Entity({ name: 'sessions' })
export class Session {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @Column({ name: 'device_id', type: 'uuid' })
  deviceId: string;

  @ManyToOne(() => Device, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'device_id' })
  device?: Device;

  @Column({ type: 'text' })
  status: SessionStatus;

  @Column({ name: 'token_hash', type: 'bytea', unique: true })
  tokenHash: Buffer;

  @Column({ name: 'otp_hash', type: 'bytea', nullable: true })
  otpHash: Buffer | null;

  @Column({ name: 'otp_expires_at', type: 'timestamptz' })
  otpExpiresAt: Date;

  @Column({ name: 'otp_attempts_left', type: 'smallint' })
  otpAttemptsLeft: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'confirmed_at', type: 'timestamptz', nullable: true })
  confirmedAt: Date | null;

  /** End of a confirmed session's life; null means no expiry (mobile default). */
  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt: Date | null;

  /** When the session became `expired` or `revoked`; the retention sweep counts from here. */
  @Column({ name: 'ended_at', type: 'timestamptz', nullable: true })
  endedAt: Date | null;

  @Column({ name: 'client_ip', type: 'text', nullable: true })
  clientIp: string | null;

  @Column({ name: 'user_agent', type: 'text', nullable: true })
  userAgent: string | null;

  @Column({ name: 'last_seen_at', type: 'timestamptz', nullable: true })
  lastSeenAt: Date | null;
}
