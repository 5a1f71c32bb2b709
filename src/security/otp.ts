import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';

/** Six decimal digits, as a JSON string. */
export const OTP_PATTERN = /^[0-9]{6}$/;

/** A new 6-digit code from the CSPRNG (`crypto.randomInt`), leading zeros kept. */
export function generateOtp(): string {
  return randomInt(0, 1_000_000).toString().padStart(6, '0');
}

/**
 * HMAC-SHA-256 of the code, keyed with the server secret and bound to one session, so a stored
 * hash is useless without the secret and cannot be replayed on another session
 * (NIST SP 800-63B §5.1.3: verifiers store OTP secrets protected).
 */
export function hashOtp(secret: string, sessionId: string, code: string): Buffer {
  return createHmac('sha256', secret).update(`${sessionId}:${code}`, 'utf8').digest();
}

/** Constant-time check of a submitted code against the stored HMAC. */
export function verifyOtp(secret: string, sessionId: string, code: string, stored: Buffer | null): boolean {
  if (stored === null) return false;
  const candidate = hashOtp(secret, sessionId, code);
  return candidate.length === stored.length && timingSafeEqual(candidate, stored);
}
