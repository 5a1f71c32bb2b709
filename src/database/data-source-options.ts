import type { DataSourceOptions } from 'typeorm';
import { MailOutbox } from '../mail/mail-outbox.entity.js';
import { RELAY_STATEMENTS } from '../mail/otp-mail.relay.js';
import { Device } from '../sessions/entities/device.entity.js';
import { OtpSend } from '../sessions/entities/otp-send.entity.js';
import { Session } from '../sessions/entities/session.entity.js';
import { User } from '../sessions/entities/user.entity.js';
import { NAMED_STATEMENTS } from '../sessions/session-statements.js';
import { namedStatementClient } from './named-statements.js';
import { InitialSchema1764403200000 } from './migrations/1764403200000-initial-schema.js';
import { SweepIndexes1764489600000 } from './migrations/1764489600000-sweep-indexes.js';
import { StartLoginFunction1764576000000 } from './migrations/1764576000000-start-login-function.js';
import { ConfirmSessionFunction1764662400000 } from './migrations/1764662400000-confirm-session-function.js';
import { SchemaComments1764748800000 } from './migrations/1764748800000-schema-comments.js';
import { MailOutbox1764835200000 } from './migrations/1764835200000-mail-outbox.js';
import { OutboxHotHandover1764921600000 } from './migrations/1764921600000-outbox-hot-handover.js';

export const ENTITIES = [User, Device, Session, OtpSend, MailOutbox];
export const MIGRATIONS = [
  InitialSchema1764403200000,
  SweepIndexes1764489600000,
  StartLoginFunction1764576000000,
  ConfirmSessionFunction1764662400000,
  SchemaComments1764748800000,
  MailOutbox1764835200000,
  OutboxHotHandover1764921600000,
];

/** The one source of database options, shared by the app, the migration command and the tests. */
export function dataSourceOptions(url: string): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    // pg.Pool options; `Client` is pg's documented seam for the class of its connections. Named:
    // the sessions' hot paths, and the mail relay's statements, which run many times a second under load.
    extra: { max: 20, connectionTimeoutMillis: 5_000, Client: namedStatementClient([...NAMED_STATEMENTS, ...RELAY_STATEMENTS]) },
  };
}
