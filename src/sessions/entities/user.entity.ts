import { Column, CreateDateColumn, Entity, PrimaryColumn, Unique } from 'typeorm';

/**
 * A person, identified by a normalized (trimmed, lower-cased) email address. Public id `usr-<uuid>`.
 * Schema: migrations 1764403200000 (table) and 1764748800000 (comments); `npm run migration:check`
 * fails when this class and the migrated schema differ.
 */
@Entity({
  name: 'users',
  comment: 'A person who logs in, identified by a normalized email address. Shown in the API as usr-<id>.',
})
@Unique('users_email_key', ['email'])
export class User {
  @PrimaryColumn('uuid', { comment: 'Random UUID (v4); the API shows it as usr-<id>.' })
  id: string;

  @Column({
    type: 'text',
    comment: 'Normalized email address (trimmed, lower-cased): the address login codes are sent to. Unique.',
  })
  email: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', comment: 'When the first login of this address created the user.' })
  createdAt: Date;
}
