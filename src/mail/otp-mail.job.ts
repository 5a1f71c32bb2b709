import type { DeviceType } from '../sessions/entities/device.entity.js';

/** The shapes of a login-code mail on its way: request → `mail_outbox` → graphile-worker job. */

/** graphile-worker task name of a login-code mail. */
export const OTP_MAIL_TASK = 'otp_mail';
/** Job key prefix: one job per session (`otp-mail:<session uuid>`), so a resend replaces a queued mail. */
export const OTP_MAIL_JOB_KEY_PREFIX = 'otp-mail:';

/** A login code to mail. */
export interface OtpMail {
  sessionId: string;
  to: string;
  code: string;
  /** When the code stops working; the mail is dropped after it. */
  expiresAt: Date;
  /** The device the login was started on, for the templates' `device_type`. */
  deviceType: DeviceType;
}

/** The mail as `send_otp` stores it in `mail_outbox.payload`: the code only sealed (AES-256-GCM, bound to the session). */
export interface OtpMailPayload {
  to: string;
  sealedCode: string;
  /** ISO 8601; past it the code is useless and the mail is dropped. */
  expiresAt: string;
  /** The code's lifetime in seconds, shown in the mail. */
  validSeconds: number;
  /** The device the login was started on (absent in mails queued before it was added). */
  deviceType?: DeviceType;
}

/** The graphile-worker job: the payload plus what the relay adds from the outbox row and the session. */
export interface OtpMailJob extends OtpMailPayload {
  sessionId: string;
  /** `mail_outbox.revision` of the mail; a resend increments it. */
  revision: number;
  /** BCP 47 language tag of the session (RFC 5646). */
  locale: string;
}
