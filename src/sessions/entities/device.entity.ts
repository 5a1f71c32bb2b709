import { Check, Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, Unique } from 'typeorm';
import { User } from './user.entity.js';

export const DEVICE_TYPES = ['mobi', 'othr'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/**
 * One client of a user: `mobi` (a mobile app install, identified by its vendor UUID) or `othr`
 * (browser, desktop). Identity is (user, type, vendor_uuid) with an absent vendor_uuid counting as
 * one value. Public id `dev-<uuid>`.
 */
@Entity({
  name: 'devices',
  comment:
    'One client of a user. Identity is (user_id, type, vendor_uuid), an absent vendor_uuid counting as one value. ' +
    'Shown in the API as dev-<id>.',
})
// UNIQUE NULLS NOT DISTINCT (PostgreSQL 15+) in the migration: TypeORM cannot express NULLS NOT
// DISTINCT; it compares unique constraints by name and columns, which match.
@Unique('devices_identity_key', ['userId', 'type', 'vendorUuid'])
@Check('devices_type_check', `type IN ('mobi', 'othr')`)
export class Device {
  @PrimaryColumn('uuid', { comment: 'Random UUID (v4); the API shows it as dev-<id>.' })
  id: string;

  @Column({ name: 'user_id', type: 'uuid', comment: 'The user this device belongs to.' })
  userId: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'devices_user_id_fkey' })
  user?: User;

  @Column({
    type: 'text',
    comment: 'mobi: a mobile app install, identified by vendor_uuid; othr: anything else (browser, desktop app).',
  })
  type: DeviceType;

  @Column({
    name: 'vendor_uuid',
    type: 'uuid',
    nullable: true,
    comment: "The app vendor's UUID of the install, lower-case; required for mobi, optional for othr.",
  })
  vendorUuid: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', comment: 'When the first login from this device created it.' })
  createdAt: Date;
}
