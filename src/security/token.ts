import { createHash, randomBytes } from 'node:crypto';

/** Bytes of CSPRNG output in a bearer token: 256 bits (OWASP Session Management Cheat Sheet). */
export const TOKEN_BYTES = 32;

/**
 * `"Bearer" 1*SP b64token` (RFC 6750 §2.1); ours are 43 base64url characters. The scheme name is
 * case-insensitive (RFC 9110 §11.1), the token is taken exactly.
 */
const BEARER_SYNTAX = /^[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)$/;

/** Longest token read; anything longer is refused without running the pattern. */
const MAX_TOKEN_LENGTH = 512;
/** Spaces allowed between the scheme and the token beyond the first, in the length limit. */
const MAX_LEADING_SPACES = 16;

/** A new opaque bearer token: 32 CSPRNG bytes, base64url (43 characters, URL-safe). */
export function generateToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** SHA-256 of the token (32 bytes): the only form stored and the lookup key. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1), or null when the header
 * is missing or not of that form. A token longer than 512 characters is refused, and a header
 * longer than that allows is refused unread.
 */
export function parseBearer(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string' || header.length > 'Bearer '.length + MAX_LEADING_SPACES + MAX_TOKEN_LENGTH) return null;
  const token = BEARER_SYNTAX.exec(header)?.[1];
  return token && token.length <= MAX_TOKEN_LENGTH ? token : null;
}
