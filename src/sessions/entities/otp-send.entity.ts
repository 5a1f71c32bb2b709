import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Device } from './device.entity.js';
import { Session } from './session.entity.js';
import { User } from './user.entity.js';

/**
 * One OTP email sent (or being sent). The per-device cooldown and the per-email hourly cap are
 * counted from these rows, so the limits hold across replicas.
 */
@Entity({
  name: 'otp_sends',
  comment:
    'One login-code email sent or queued. The resend cooldown per device and the hourly cap per address are counted ' +
    'from these rows; the sweep deletes them once no limit looks back that far.',
})
@Index('otp_sends_user_sent_at_idx', ['userId', 'sentAt']) // the send limits: one user's recent sends
@Index('otp_sends_session_id_idx', ['sessionId']) // ON DELETE CASCADE from sessions
@Index('otp_sends_sent_at_idx', ['sentAt']) // the sweep
export class OtpSend {
  @PrimaryGeneratedColumn('identity', { type: 'bigint', comment: 'Sequence number.' })
  id: string;

  @Column({ name: 'user_id', type: 'uuid', comment: 'The user (email address) the code was sent to.' })
  userId: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'otp_sends_user_id_fkey' })
  user?: User;

  @Column({ name: 'device_id', type: 'uuid', comment: 'The device that asked for the code.' })
  deviceId: string;

  @ManyToOne(() => Device, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'otp_sends_device_id_fkey' })
  device?: Device;

  @Column({ name: 'session_id', type: 'uuid', comment: 'The pending session the code is for.' })
  sessionId: string;

  @ManyToOne(() => Session, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'otp_sends_session_id_fkey' })
  session?: Session;

  @Column({ name: 'sent_at', type: 'timestamptz', comment: 'When the send was accepted (the request time).' })
  sentAt: Date;
}
