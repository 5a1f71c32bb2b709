import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, Unique } from 'typeorm';
import { Device } from './device.entity.js';
import { User } from './user.entity.js';

export const SESSION_STATUSES = ['pending', 'confirmed', 'expired', 'revoked'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/**
 * One login of one device. Public id `ses-<uuid>`. Secrets are never stored in clear:
 * `token_hash` is SHA-256 of the bearer token, `otp_hash` an HMAC-SHA-256 of the code (cleared once
 * the session leaves `pending`). Partial indexes carry their `where` here for the reader; TypeORM
 * compares indexes by name, uniqueness and columns only.
 */
@Entity({
  name: 'sessions',
  comment: 'One login of one device, authenticated by a bearer token once confirmed. Shown in the API as ses-<id>.',
})
@Unique('sessions_token_hash_key', ['tokenHash'])
@Check('sessions_status_check', `status IN ('pending', 'confirmed', 'expired', 'revoked')`)
@Check('sessions_otp_attempts_left_check', `otp_attempts_left >= 0`)
@Index('sessions_device_id_idx', ['deviceId'])
@Index('sessions_user_id_idx', ['userId'])
// One live session per device: at most one confirmed session per device, enforced by PostgreSQL.
@Index('sessions_one_confirmed_per_device', ['deviceId'], { unique: true, where: `status = 'confirmed'` })
// The expiry and retention sweep finds its rows through these.
@Index('sessions_pending_otp_expires_at_idx', ['otpExpiresAt'], { where: `status = 'pending'` })
@Index('sessions_confirmed_expires_at_idx', ['expiresAt'], { where: `status = 'confirmed'` })
@Index('sessions_ended_at_idx', ['endedAt'], { where: `status IN ('expired', 'revoked')` })
@Check('sessions_locale_check', `locale ~ '^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$' AND length(locale) <= 35`)
export class Session {
  @PrimaryColumn('uuid', { comment: 'Random UUID (v4); the API shows it as ses-<id>.' })
  id: string;

  @Column({ name: 'user_id', type: 'uuid', comment: 'The user who logs in.' })
  userId: string;

  /** Loaded on every session SessionsRepository returns. */
  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'sessions_user_id_fkey' })
  user: User;

  @Column({ name: 'device_id', type: 'uuid', comment: 'The device the session belongs to (one live session per device).' })
  deviceId: string;

  /** Loaded on every session SessionsRepository returns. */
  @ManyToOne(() => Device, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'sessions_device_id_fkey' })
  device: Device;

  @Column({
    type: 'text',
    comment:
      'pending: waiting for the emailed code; confirmed: the token authenticates until expires_at; expired: the code, ' +
      "its attempts or the session's life ran out; revoked: logged out, signed out by the user, or replaced by a newer " +
      'login of the same device.',
  })
  status: SessionStatus;

  @Column({ name: 'token_hash', type: 'bytea', comment: 'SHA-256 of the bearer token; the token itself is never stored.' })
  tokenHash: Buffer;

  @Column({
    name: 'otp_hash',
    type: 'bytea',
    nullable: true,
    comment:
      'HMAC-SHA-256 of the login code, keyed with APP_SECRET and bound to the session id; the code itself is never ' +
      'stored. Null once the session is no longer pending.',
  })
  otpHash: Buffer | null;

  @Column({ name: 'otp_expires_at', type: 'timestamptz', comment: 'When the emailed code stops working.' })
  otpExpiresAt: Date;

  @Column({
    name: 'otp_attempts_left',
    type: 'smallint',
    comment: 'Wrong codes still allowed (OTP_MAX_ATTEMPTS at first); the wrong code that uses the last one expires the session.',
  })
  otpAttemptsLeft: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', comment: 'When the login started (POST /sessions).' })
  createdAt: Date;

  @Column({ name: 'confirmed_at', type: 'timestamptz', nullable: true, comment: 'When the right code was entered; null until then.' })
  confirmedAt: Date | null;

  /** End of a confirmed session's life; null means no expiry (mobile default). */
  @Column({
    name: 'expires_at',
    type: 'timestamptz',
    nullable: true,
    comment: "End of a confirmed session's life (OTHR_SESSION_TTL, MOBI_SESSION_TTL); null: no expiry.",
  })
  expiresAt: Date | null;

  /** When the session became `expired` or `revoked`; the retention sweep counts from here. */
  @Column({
    name: 'ended_at',
    type: 'timestamptz',
    nullable: true,
    comment: 'When the session became expired or revoked; deleted SESSION_RETENTION_DAYS later.',
  })
  endedAt: Date | null;

  @Column({ name: 'client_ip', type: 'text', nullable: true, comment: 'IP address of the client that started the login.' })
  clientIp: string | null;

  @Column({
    name: 'user_agent',
    type: 'text',
    nullable: true,
    comment: 'User-Agent header of the request that started the login, at most 512 characters.',
  })
  userAgent: string | null;

  @Column({
    name: 'last_seen_at',
    type: 'timestamptz',
    nullable: true,
    comment: 'Last use of the token, refreshed at most once a minute.',
  })
  lastSeenAt: Date | null;

  /** BCP 47 language tag (RFC 5646) of the code mail; a resend uses it too. */
  @Column({ type: 'text', default: 'en', comment: 'BCP 47 language tag (RFC 5646) of the code mail; a resend uses it too.' })
  locale: string;
}
