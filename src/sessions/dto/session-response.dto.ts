import { toPublicId } from '../../common/public-id.js';
import type { DeviceType } from '../entities/device.entity.js';
import type { SessionStatus } from '../entities/session.entity.js';
import type { IssuedSession } from '../sessions.service.js';

export class SessionUserDto {
  /** `usr-<uuid>` */
  uuid: string;
  email: string;
}

export class SessionDeviceDto {
  /** `dev-<uuid>` */
  uuid: string;
  type: DeviceType;
  vendor_uuid: string | null;
}

/**
 * A session as returned by POST and PATCH /sessions to its token holder. The first nine fields
 * keep the seed's names and order; timestamps are ISO 8601 UTC with `Z`.
 */
export class SessionResponseDto {
  uuid: string;
  created_at: string;
  token: string;
  is_new_user: boolean;
  is_new_device: boolean;
  user: SessionUserDto;
  device: SessionDeviceDto;
  status: SessionStatus;
  otp_expires_at: string;
  confirmed_at: string | null;
  expires_at: string | null;

  static from(issued: IssuedSession): SessionResponseDto {
    const { session } = issued;
    return {
      uuid: toPublicId('ses', session.id),
      created_at: session.createdAt.toISOString(),
      token: issued.token,
      is_new_user: issued.isNewUser,
      is_new_device: issued.isNewDevice,
      user: { uuid: toPublicId('usr', session.userId), email: session.email },
      device: { uuid: toPublicId('dev', session.deviceId), type: session.deviceType, vendor_uuid: session.vendorUuid },
      status: session.status,
      otp_expires_at: session.otpExpiresAt.toISOString(),
      confirmed_at: session.confirmedAt?.toISOString() ?? null,
      expires_at: session.expiresAt?.toISOString() ?? null,
    };
  }
}
