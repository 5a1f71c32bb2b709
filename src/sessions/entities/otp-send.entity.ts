import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * One OTP email sent (or being sent). The per-device cooldown and the per-email hourly cap are
 * counted from these rows, so the limits hold across replicas.
 */
@Entity({ name: 'otp_sends' })
export class OtpSend {
  @PrimaryGeneratedColumn('identity', { type: 'bigint' })
  id: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId: string;

  @Column({ name: 'device_id', type: 'uuid' })
  deviceId: string;

  @Column({ name: 'session_id', type: 'uuid' })
  sessionId: string;

  @Column({ name: 'sent_at', type: 'timestamptz' })
  sentAt: Date;
}
