import { createHmac } from 'node:crypto';
import { generateOtp, hashOtp, OTP_PATTERN, verifyOtp } from './otp.js';

const SECRET = 'x'.repeat(32) + '-test-secret';
const SESSION_ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
const OTHER_SESSION_ID = '9b2c8a1e-6d1f-4c7a-8e3b-2f4a5c6d7e8f';

describe('generateOtp', () => {
  const RUNS = 10_000;
  const codes = Array.from({ length: RUNS }, () => generateOtp());

  it('always returns exactly 6 ASCII digits', () => {
    for (const code of codes) {
      expect(typeof code).toBe('string');
      expect(code).toMatch(/^[0-9]{6}$/);
      expect(code).toMatch(OTP_PATTERN);
    }
  });

  it('keeps leading zeros (about 1 code in 10 starts with 0)', () => {
    const leadingZero = codes.filter((code) => code.startsWith('0')).length;
    // Expected ~1000 of 10 000 (sd ~30); far outside chance if zeros were dropped or never drawn.
    expect(leadingZero).toBeGreaterThan(700);
    expect(leadingZero).toBeLessThan(1300);
    expect(codes.some((code) => code.startsWith('00'))).toBe(true);
  });

  it('uses every digit in every position, roughly uniformly', () => {
    const perPosition = Array.from({ length: 6 }, () => new Array<number>(10).fill(0));
    for (const code of codes) {
      for (let i = 0; i < 6; i++) perPosition[i][code.charCodeAt(i) - 48] += 1;
    }
    for (const counts of perPosition) {
      // Expected 1000 per digit per position (sd ~30).
      for (const count of counts) {
        expect(count).toBeGreaterThan(800);
        expect(count).toBeLessThan(1200);
      }
    }
  });

  it('does not repeat itself much (10 000 draws out of 1 000 000)', () => {
    // Birthday bound: ~50 collisions expected; a broken generator gives thousands.
    expect(new Set(codes).size).toBeGreaterThan(RUNS - 200);
  });
});

describe('hashOtp', () => {
  it('is a 32-byte HMAC-SHA-256', () => {
    const hash = hashOtp(SECRET, SESSION_ID, '123456');
    expect(Buffer.isBuffer(hash)).toBe(true);
    expect(hash).toHaveLength(32);
  });

  it('is keyed with the secret over "<session id>:<code>"', () => {
    const expected = createHmac('sha256', SECRET).update(`${SESSION_ID}:123456`, 'utf8').digest();
    expect(hashOtp(SECRET, SESSION_ID, '123456').equals(expected)).toBe(true);
  });

  it('is deterministic', () => {
    expect(hashOtp(SECRET, SESSION_ID, '000042').equals(hashOtp(SECRET, SESSION_ID, '000042'))).toBe(true);
  });

  it('depends on the secret', () => {
    const other = hashOtp('y'.repeat(32) + '-test-secret', SESSION_ID, '123456');
    expect(hashOtp(SECRET, SESSION_ID, '123456').equals(other)).toBe(false);
  });

  it('depends on the session id', () => {
    expect(hashOtp(SECRET, SESSION_ID, '123456').equals(hashOtp(SECRET, OTHER_SESSION_ID, '123456'))).toBe(false);
  });

  it('depends on the code', () => {
    expect(hashOtp(SECRET, SESSION_ID, '123456').equals(hashOtp(SECRET, SESSION_ID, '123457'))).toBe(false);
    expect(hashOtp(SECRET, SESSION_ID, '012345').equals(hashOtp(SECRET, SESSION_ID, '12345'))).toBe(false);
  });
});

describe('verifyOtp', () => {
  const stored = hashOtp(SECRET, SESSION_ID, '012345');

  it('accepts the right code for the right session and secret', () => {
    expect(verifyOtp(SECRET, SESSION_ID, '012345', stored)).toBe(true);
  });

  it('refuses a wrong code', () => {
    expect(verifyOtp(SECRET, SESSION_ID, '012346', stored)).toBe(false);
    expect(verifyOtp(SECRET, SESSION_ID, '12345', stored)).toBe(false);
  });

  it('refuses the right code on another session (no replay across sessions)', () => {
    expect(verifyOtp(SECRET, OTHER_SESSION_ID, '012345', stored)).toBe(false);
  });

  it('refuses the right code under another secret', () => {
    expect(verifyOtp('z'.repeat(40), SESSION_ID, '012345', stored)).toBe(false);
  });

  it('refuses when no hash is stored (OTP cleared once used)', () => {
    expect(verifyOtp(SECRET, SESSION_ID, '012345', null)).toBe(false);
  });

  it('refuses, without throwing, a stored hash of another length', () => {
    expect(verifyOtp(SECRET, SESSION_ID, '012345', stored.subarray(0, 16))).toBe(false);
    expect(verifyOtp(SECRET, SESSION_ID, '012345', Buffer.concat([stored, Buffer.from([0])]))).toBe(false);
    expect(verifyOtp(SECRET, SESSION_ID, '012345', Buffer.alloc(0))).toBe(false);
  });
});
