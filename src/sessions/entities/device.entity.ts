import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { User } from './user.entity.js';

export const DEVICE_TYPES = ['mobi', 'othr'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/**
 * One client of a user: `mobi` (a mobile app install, identified by its vendor UUID) or `othr`
 * (browser, desktop). Identity is (user, type, vendor_uuid) with an absent vendor_uuid counting as
 * one value (`UNIQUE NULLS NOT DISTINCT`, PostgreSQL 15+). Public id `dev-<uuid>`.
 */
@Entity({ name: 'devices' })
export class Device {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @Column({ type: 'text' })
  type: DeviceType;

  @Column({ name: 'vendor_uuid', type: 'uuid', nullable: true })
  vendorUuid: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
