import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** A person, identified by a normalized (trimmed, lower-cased) email address. Public id `usr-<uuid>`. */
@Entity({ name: 'users' })
export class User {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ type: 'text', unique: true })
  email: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
