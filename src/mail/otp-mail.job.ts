import type { DeviceType } from '../sessions/entities/device.entity.js';

/** The shapes of a login-code mail on its way: request → `mail_outbox` → graphile-worker job. */

/** graphile-worker task name of login-code mails. */
export const OTP_MAIL_TASK = 'otp_mail';

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

/**
 * One mail of a graphile-worker job: which outbox row, at which revision. The job carries no
 * address and no code; the worker reads them from `mail_outbox` when it sends, and sends nothing
 * when that revision is gone (settled, expired, or replaced by a resend).
 */
export interface OtpMailRef {
  sessionId: string;
  /** `mail_outbox.revision` when the relay handed the row over; a resend increments it. */
  revision: number;
}

/**
 * A job's payload: a graphile-worker "batch job" (an array; the entries that fail are retried
 * alone), or one object in jobs queued before batches (it has the same two members, among others).
 */
export type OtpMailJobPayload = OtpMailRef[] | OtpMailRef;

/** An outbox row read by the worker for sending: the payload plus the session's locale. */
export interface OutboxMail extends OtpMailRef {
  payload: OtpMailPayload;
  /** BCP 47 language tag of the session (RFC 5646). */
  locale: string;
  /** False once the session can no longer use the code (revoked, confirmed, attempts used up): not sent. */
  codeUsable: boolean;
}
