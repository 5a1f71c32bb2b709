import { ApiProperty } from '@nestjs/swagger';
import { toPublicId } from '../../common/public-id.js';
import { DEVICE_TYPES, type DeviceType } from '../entities/device.entity.js';
import { type Session, SESSION_STATUSES, type SessionStatus } from '../entities/session.entity.js';
import type { IssuedSession } from '../sessions.service.js';

export class SessionUserDto {
  @ApiProperty({ example: 'usr-7c9e6679-7425-40de-944b-e07fc1f90ae7', pattern: '^usr-[0-9a-f-]{36}$' })
  uuid: string;

  @ApiProperty({ example: 'joe@example.com', description: 'Trimmed and lower-cased.' })
  email: string;
}

export class SessionDeviceDto {
  @ApiProperty({ example: 'dev-16fd2706-8baf-433b-82eb-8c7fada847da', pattern: '^dev-[0-9a-f-]{36}$' })
  uuid: string;

  @ApiProperty({ enum: DEVICE_TYPES, example: 'mobi' })
  type: DeviceType;

  @ApiProperty({ type: String, nullable: true, example: '0f8fad5b-d9cb-469f-a165-70867728950e' })
  vendor_uuid: string | null;
}

const SESSION_UUID = { example: 'ses-b3b66e99-dd10-4980-8a01-ae984728a833', pattern: '^ses-[0-9a-f-]{36}$' };
const TIMESTAMP = { format: 'date-time', example: '2026-01-01T12:00:00.000Z' };

/**
 * A session as returned by POST and PATCH /sessions to its token holder. The first nine fields
 * keep the seed's names and order; timestamps are ISO 8601 UTC with `Z`.
 */
export class SessionResponseDto {
  @ApiProperty(SESSION_UUID)
  uuid: string;

  @ApiProperty(TIMESTAMP)
  created_at: string;

  @ApiProperty({ description: 'Opaque bearer token (43 base64url characters). Shown only to its holder.', example: 'yDPPJLn51OXmc05nbOio3tUfA_kGKeZv4Vcg15Qw7rk' })
  token: string;

  @ApiProperty({ description: 'This request created the user: true only in a 201 of POST /sessions; false when it returns an existing session (200) and in the answer of PATCH.' })
  is_new_user: boolean;

  @ApiProperty({ description: 'This request created the device: true only in a 201 of POST /sessions; false when it returns an existing session (200) and in the answer of PATCH.' })
  is_new_device: boolean;

  @ApiProperty({ type: SessionUserDto })
  user: SessionUserDto;

  @ApiProperty({ type: SessionDeviceDto })
  device: SessionDeviceDto;

  @ApiProperty({ enum: SESSION_STATUSES, example: 'pending' })
  status: SessionStatus;

  @ApiProperty({ ...TIMESTAMP, description: 'End of the code\'s validity.' })
  otp_expires_at: string;

  @ApiProperty({ ...TIMESTAMP, type: String, nullable: true })
  confirmed_at: string | null;

  @ApiProperty({ ...TIMESTAMP, type: String, nullable: true, description: 'Null: no expiry (mobi default) or not confirmed yet.' })
  expires_at: string | null;

  static from(issued: IssuedSession): SessionResponseDto {
    const { session } = issued;
    return {
      uuid: toPublicId('ses', session.id),
      created_at: session.createdAt.toISOString(),
      token: issued.token,
      is_new_user: issued.isNewUser,
      is_new_device: issued.isNewDevice,
      user: userOf(session),
      device: deviceOf(session),
      status: session.status,
      otp_expires_at: session.otpExpiresAt.toISOString(),
      confirmed_at: iso(session.confirmedAt),
      expires_at: iso(session.expiresAt),
    };
  }
}

/** Example of a new login's answer (POST /sessions, 201): pending, so not confirmed and without an expiry yet. */
export const PENDING_SESSION_EXAMPLE: SessionResponseDto = {
  uuid: 'ses-b3b66e99-dd10-4980-8a01-ae984728a833',
  created_at: '2026-01-01T12:00:00.000Z',
  token: 'yDPPJLn51OXmc05nbOio3tUfA_kGKeZv4Vcg15Qw7rk',
  is_new_user: true,
  is_new_device: true,
  user: { uuid: 'usr-7c9e6679-7425-40de-944b-e07fc1f90ae7', email: 'joe@example.com' },
  device: { uuid: 'dev-16fd2706-8baf-433b-82eb-8c7fada847da', type: 'othr', vendor_uuid: null },
  status: 'pending',
  otp_expires_at: '2026-01-01T12:05:00.000Z',
  confirmed_at: null,
  expires_at: null,
};

/** Example of PATCH /sessions/{uuid}'s answer: confirmed; an `othr` session expires OTHR_SESSION_TTL (2 h) later. */
export const CONFIRMED_SESSION_EXAMPLE: SessionResponseDto = {
  ...PENDING_SESSION_EXAMPLE,
  is_new_user: false,
  is_new_device: false,
  status: 'confirmed',
  confirmed_at: '2026-01-01T12:01:30.000Z',
  expires_at: '2026-01-01T14:01:30.000Z',
};

/** A session as its user sees it later (GET /sessions/current, GET /sessions): never a token. */
export class SessionInfoDto {
  @ApiProperty(SESSION_UUID)
  uuid: string;

  @ApiProperty({ enum: SESSION_STATUSES, example: 'confirmed' })
  status: SessionStatus;

  @ApiProperty({ type: SessionUserDto })
  user: SessionUserDto;

  @ApiProperty({ type: SessionDeviceDto })
  device: SessionDeviceDto;

  @ApiProperty(TIMESTAMP)
  created_at: string;

  @ApiProperty(TIMESTAMP)
  otp_expires_at: string;

  @ApiProperty({ ...TIMESTAMP, type: String, nullable: true })
  confirmed_at: string | null;

  @ApiProperty({ ...TIMESTAMP, type: String, nullable: true })
  expires_at: string | null;

  @ApiProperty({ ...TIMESTAMP, type: String, nullable: true, description: 'Last use of the token, refreshed at most once a minute.' })
  last_seen_at: string | null;

  @ApiProperty({ type: String, nullable: true, example: '203.0.113.7', description: 'Client IP the session was created from.' })
  client_ip: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'MyApp/1.2 (iPhone; iOS 19)', description: 'User-Agent the session was created with (first 512 characters).' })
  user_agent: string | null;

  @ApiProperty({ description: 'This is the session whose token made the request.' })
  current: boolean;

  /** `session` with its user and device; `currentId` the id of the session whose token made the request. */
  static from(session: Session, currentId: string): SessionInfoDto {
    return {
      uuid: toPublicId('ses', session.id),
      status: session.status,
      user: userOf(session),
      device: deviceOf(session),
      created_at: session.createdAt.toISOString(),
      otp_expires_at: session.otpExpiresAt.toISOString(),
      confirmed_at: iso(session.confirmedAt),
      expires_at: iso(session.expiresAt),
      last_seen_at: iso(session.lastSeenAt),
      client_ip: session.clientIp,
      user_agent: session.userAgent,
      current: session.id === currentId,
    };
  }
}

export class SessionListDto {
  @ApiProperty({ type: [SessionInfoDto], description: 'Pending and confirmed sessions still usable, newest first.' })
  sessions: SessionInfoDto[];
}

export class OtpResentDto {
  @ApiProperty(SESSION_UUID)
  uuid: string;

  @ApiProperty({ ...TIMESTAMP, description: 'End of the new code\'s validity.' })
  otp_expires_at: string;
}

function userOf({ user }: Session): SessionUserDto {
  return { uuid: toPublicId('usr', user.id), email: user.email };
}

function deviceOf({ device }: Session): SessionDeviceDto {
  return { uuid: toPublicId('dev', device.id), type: device.type, vendor_uuid: device.vendorUuid };
}

function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}
