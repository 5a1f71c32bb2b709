import { fromPublicId, toPublicId, UUID_PATTERN } from './public-id.js';

const UUID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

describe('toPublicId', () => {
  it('prefixes the UUID', () => {
    expect(toPublicId('ses', UUID)).toBe(`ses-${UUID}`);
    expect(toPublicId('usr', UUID)).toBe(`usr-${UUID}`);
    expect(toPublicId('dev', UUID)).toBe(`dev-${UUID}`);
  });

  it('round-trips through fromPublicId', () => {
    expect(fromPublicId('ses', toPublicId('ses', UUID))).toBe(UUID);
  });
});

describe('fromPublicId', () => {
  it('returns the bare UUID', () => {
    expect(fromPublicId('ses', `ses-${UUID}`)).toBe(UUID);
  });

  it('accepts upper case and returns lower case', () => {
    expect(fromPublicId('ses', `ses-${UUID.toUpperCase()}`)).toBe(UUID);
  });

  it('does not check version or variant (RFC 9562 textual form only)', () => {
    expect(fromPublicId('dev', 'dev-00000000-0000-0000-0000-000000000000')).toBe('00000000-0000-0000-0000-000000000000');
    expect(fromPublicId('dev', 'dev-12345678-9abc-7def-0123-456789abcdef')).toBe('12345678-9abc-7def-0123-456789abcdef');
  });

  it('refuses another prefix', () => {
    expect(fromPublicId('ses', `usr-${UUID}`)).toBeNull();
    expect(fromPublicId('usr', `ses-${UUID}`)).toBeNull();
  });

  it('refuses a prefix in another case', () => {
    expect(fromPublicId('ses', `SES-${UUID}`)).toBeNull();
  });

  it('refuses a missing prefix or separator', () => {
    expect(fromPublicId('ses', UUID)).toBeNull();
    expect(fromPublicId('ses', `ses${UUID}`)).toBeNull();
    expect(fromPublicId('ses', `ses_${UUID}`)).toBeNull();
    expect(fromPublicId('ses', 'ses-')).toBeNull();
    expect(fromPublicId('ses', '')).toBeNull();
  });

  it.each([
    ['too short', '3f2504e0-4f89-41d3-9a0c-0305e82c330'],
    ['too long', '3f2504e0-4f89-41d3-9a0c-0305e82c33011'],
    ['no dashes', '3f2504e04f8941d39a0c0305e82c3301'],
    ['braces', '{3f2504e0-4f89-41d3-9a0c-0305e82c3301}'],
    ['urn', 'urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301'],
    ['non-hex', '3f2504e0-4f89-41d3-9a0c-0305e82c330g'],
    ['dashes misplaced', '3f2504e04-f89-41d3-9a0c-0305e82c3301'],
    ['trailing newline', '3f2504e0-4f89-41d3-9a0c-0305e82c3301\n'],
    ['leading space', ' 3f2504e0-4f89-41d3-9a0c-0305e82c3301'],
    ['doubled prefix', 'ses-3f2504e0-4f89-41d3-9a0c-0305e82c3301'],
    ['path', '3f2504e0-4f89-41d3-9a0c-0305e82c3301/otp'],
  ])('refuses a UUID part that is %s', (_label, uuid) => {
    expect(fromPublicId('ses', `ses-${uuid}`)).toBeNull();
  });
});

describe('UUID_PATTERN', () => {
  it('matches the 8-4-4-4-12 form in either case', () => {
    expect(UUID_PATTERN.test(UUID)).toBe(true);
    expect(UUID_PATTERN.test(UUID.toUpperCase())).toBe(true);
    expect(UUID_PATTERN.test(`${UUID}x`)).toBe(false);
  });
});
