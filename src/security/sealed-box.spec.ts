import { deriveKey, open, seal } from './sealed-box.js';

describe('sealed box (AES-256-GCM, key from HKDF-SHA-256)', () => {
  const key = deriveKey('a-server-secret-of-at-least-32-characters', 'otp-mail-job');

  it('derives 32-byte keys that differ by secret and purpose', () => {
    expect(key).toHaveLength(32);
    expect(deriveKey('a-server-secret-of-at-least-32-characters', 'otp-mail-job').equals(key)).toBe(true);
    expect(deriveKey('another-server-secret-of-32-characters!', 'otp-mail-job').equals(key)).toBe(false);
    expect(deriveKey('a-server-secret-of-at-least-32-characters', 'other').equals(key)).toBe(false);
  });

  it('opens what it sealed, and the sealed form does not contain the plaintext', () => {
    const sealed = seal(key, '042517', 'session-1');
    expect(sealed).not.toContain('042517');
    expect(Buffer.from(sealed, 'base64url').toString('latin1')).not.toContain('042517');
    expect(open(key, sealed, 'session-1')).toBe('042517');
  });

  it('uses a fresh IV each time', () => {
    expect(seal(key, '042517', 's')).not.toBe(seal(key, '042517', 's'));
  });

  it('refuses another context, another key, or an altered value', () => {
    const sealed = seal(key, '042517', 'session-1');
    expect(() => open(key, sealed, 'session-2')).toThrow();
    expect(() => open(deriveKey('another-server-secret-of-32-characters!', 'otp-mail-job'), sealed, 'session-1')).toThrow();
    const raw = Buffer.from(sealed, 'base64url');
    raw[raw.length - 1] ^= 1;
    expect(() => open(key, raw.toString('base64url'), 'session-1')).toThrow();
  });
});
