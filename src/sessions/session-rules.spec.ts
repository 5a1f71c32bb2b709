import { confirmedExpiry } from './session-rules.js';

describe('confirmedExpiry', () => {
  const confirmedAt = new Date('2026-01-01T12:00:00.000Z');

  it('othr: confirmed_at + OTHR_SESSION_TTL', () => {
    expect(confirmedExpiry('othr', confirmedAt, { othrTtl: 7200, mobiTtl: null })).toEqual(
      new Date('2026-01-01T14:00:00.000Z'),
    );
  });

  it('othr: ignores MOBI_SESSION_TTL', () => {
    expect(confirmedExpiry('othr', confirmedAt, { othrTtl: 60, mobiTtl: 86_400 })).toEqual(
      new Date('2026-01-01T12:01:00.000Z'),
    );
  });

  it('othr: keeps the milliseconds of confirmed_at', () => {
    const t = new Date('2026-01-01T12:00:00.123Z');
    expect(confirmedExpiry('othr', t, { othrTtl: 1, mobiTtl: null })).toEqual(new Date('2026-01-01T12:00:01.123Z'));
  });

  it('mobi without MOBI_SESSION_TTL: never expires (null)', () => {
    expect(confirmedExpiry('mobi', confirmedAt, { othrTtl: 7200, mobiTtl: null })).toBeNull();
  });

  it('mobi with MOBI_SESSION_TTL: confirmed_at + that TTL, not OTHR_SESSION_TTL', () => {
    expect(confirmedExpiry('mobi', confirmedAt, { othrTtl: 7200, mobiTtl: 86_400 })).toEqual(
      new Date('2026-01-02T12:00:00.000Z'),
    );
  });

  it('does not modify confirmed_at', () => {
    const t = new Date(confirmedAt);
    confirmedExpiry('othr', t, { othrTtl: 7200, mobiTtl: null });
    expect(t).toEqual(confirmedAt);
  });
});

