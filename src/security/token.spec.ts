import { createHash } from 'node:crypto';
import { generateToken, hashToken, parseBearer, TOKEN_BYTES } from './token.js';

describe('generateToken', () => {
  it('is 43 URL-safe base64 characters (32 bytes, no padding)', () => {
    for (let i = 0; i < 1000; i++) {
      const token = generateToken();
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token, 'base64url')).toHaveLength(TOKEN_BYTES);
    }
    expect(TOKEN_BYTES).toBeGreaterThanOrEqual(32);
  });

  it('never repeats over 10 000 tokens', () => {
    const tokens = new Set(Array.from({ length: 10_000 }, () => generateToken()));
    expect(tokens.size).toBe(10_000);
  });
});

describe('hashToken', () => {
  it('is the SHA-256 of the token', () => {
    const token = generateToken();
    const expected = createHash('sha256').update(token, 'utf8').digest();
    const hash = hashToken(token);
    expect(hash).toHaveLength(32);
    expect(hash.equals(expected)).toBe(true);
  });

  it('matches a known SHA-256 value', () => {
    expect(hashToken('abc').toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('differs for different tokens', () => {
    expect(hashToken('token-a').equals(hashToken('token-b'))).toBe(false);
  });
});

describe('parseBearer', () => {
  const token = 'Ab3_-x.y~z+/9';

  it('returns the token of "Bearer <token>"', () => {
    expect(parseBearer(`Bearer ${token}`)).toBe(token);
    const generated = generateToken();
    expect(parseBearer(`Bearer ${generated}`)).toBe(generated);
  });

  it('accepts b64token padding', () => {
    expect(parseBearer('Bearer abc==')).toBe('abc==');
  });

  it('treats the scheme case-insensitively (RFC 9110 §11.1) and keeps the token exact', () => {
    expect(parseBearer('bearer AbC')).toBe('AbC');
    expect(parseBearer('BEARER AbC')).toBe('AbC');
    expect(parseBearer('BeArEr aBc')).toBe('aBc');
  });

  it('refuses a missing header', () => {
    expect(parseBearer(undefined)).toBeNull();
    expect(parseBearer('')).toBeNull();
  });

  it('refuses an array (header sent twice)', () => {
    expect(parseBearer([`Bearer ${token}`])).toBeNull();
    expect(parseBearer([`Bearer ${token}`, `Bearer ${token}`])).toBeNull();
  });

  it('refuses other schemes and a scheme without a token', () => {
    expect(parseBearer(`Basic ${token}`)).toBeNull();
    expect(parseBearer(`Token ${token}`)).toBeNull();
    expect(parseBearer('Bearer')).toBeNull();
    expect(parseBearer('Bearer ')).toBeNull();
    expect(parseBearer(token)).toBeNull();
    expect(parseBearer(`Bearer${token}`)).toBeNull();
  });

  it('takes one or more spaces between the scheme and the token (RFC 6750 §2.1: "Bearer" 1*SP b64token)', () => {
    expect(parseBearer(`Bearer  ${token}`)).toBe(token);
    expect(parseBearer(`bearer     ${token}`)).toBe(token);
  });

  it('refuses other whitespace, and spaces anywhere else', () => {
    expect(parseBearer(`Bearer \t${token}`)).toBeNull();
    expect(parseBearer(` Bearer ${token}`)).toBeNull();
    expect(parseBearer(`Bearer ${token} `)).toBeNull();
    expect(parseBearer(`Bearer\t${token}`)).toBeNull();
    expect(parseBearer(`Bearer ${token}\n`)).toBeNull();
    expect(parseBearer(`Bearer ab cd`)).toBeNull();
  });

  it('refuses characters outside b64token', () => {
    expect(parseBearer('Bearer abc,def')).toBeNull();
    expect(parseBearer('Bearer abc"')).toBeNull();
    expect(parseBearer('Bearer =abc')).toBeNull();
    expect(parseBearer('Bearer ab=c')).toBeNull();
    expect(parseBearer('Bearer tökén')).toBeNull();
  });

  it('accepts a token of 512 characters and refuses one over 512', () => {
    expect(parseBearer(`Bearer ${'a'.repeat(512)}`)).toBe('a'.repeat(512));
    expect(parseBearer(`Bearer ${'a'.repeat(513)}`)).toBeNull();
    expect(parseBearer(`Bearer    ${'a'.repeat(512)}`)).toBe('a'.repeat(512));
    expect(parseBearer(`Bearer    ${'a'.repeat(513)}`)).toBeNull();
    expect(parseBearer(`bearer ${'a'.repeat(513)}`)).toBeNull();
    expect(parseBearer(`Bearer ${'a'.repeat(100_000)}`)).toBeNull();
  });
});
