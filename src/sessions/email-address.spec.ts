import fc from 'fast-check';
import { isEmail } from 'class-validator';
import { isNormalizedEmailAddress, normalizeEmailAddress } from './email-address.js';

describe('normalizeEmailAddress', () => {
  it.each([
    ['  Joe@Example.COM \t\n', 'joe@example.com'],
    ['joe@bücher.example', 'joe@xn--bcher-kva.example'], // NFC ü
    ['joe@bu\u0308cher.example', 'joe@xn--bcher-kva.example'], // NFD u + combining diaeresis
    ['JOE@BÜCHER.EXAMPLE', 'joe@xn--bcher-kva.example'],
    ['joe@XN--BCHER-KVA.example', 'joe@xn--bcher-kva.example'],
    ['Jo\u0308rg@example.com', 'j\u00f6rg@example.com'], // the local part is NFC too
    ['"A@B"@Example.com', '"a@b"@example.com'], // the domain is after the last '@'
    ['user@例え.テスト', 'user@xn--r8jz45g.xn--zckzah'],
  ])('%j → %j', (raw, normalized) => {
    expect(normalizeEmailAddress(raw)).toBe(normalized);
    expect(isNormalizedEmailAddress(normalized)).toBe(true);
  });

  it('gives the A-label, NFC and NFD spellings of one address one form', () => {
    const forms = ['joe@xn--bcher-kva.example', 'joe@b\u00fccher.example', 'joe@bu\u0308cher.example', ' JOE@B\u00dcCHER.EXAMPLE'];
    expect(new Set(forms.map(normalizeEmailAddress))).toEqual(new Set(['joe@xn--bcher-kva.example']));
  });

  it.each([
    '"jo\u0001e"@example.com',
    'joe\u0000@example.com',
    'jo\u007fe@example.com',
    'joe@exa\u001fmple.com',
    'a\nb@example.com',
    'jo\u0085e@example.com', // C1 next line
    'jo\u200be@example.com', // zero-width space
    'jo\u200de@example.com', // zero-width joiner
    'jo\ufeffe@example.com', // byte order mark (inside: trim() removes it at the ends)
    'jo\u00ade@example.com', // soft hyphen
    'joe\u202e@example.com', // right-to-left override
    'jo\u2066e\u2069@example.com', // left-to-right isolate
    'jo\u2028e@example.com', // line separator
    'jo\u2029e@example.com', // paragraph separator
    'joe@exa\u200bmple.com', // in the domain too
    'jo\u034fe@example.com', // combining grapheme joiner (Default_Ignorable_Code_Point)
    'jo\ufe0fe@example.com', // variation selector
    'jo\u3164e@example.com', // Hangul filler
    'jo\u2800e@example.com', // blank Braille pattern
    'jo\u00a0e@example.com', // no-break space
    'jo\u2009e@example.com', // thin space
    'jo\u3000e@example.com', // ideographic space
  ])(
    'refuses a control or invisible character inside: %j',
    (raw) => {
      expect(normalizeEmailAddress(raw)).toBeNull();
    },
  );

  it('refuses a domain that has no A-label', () => {
    expect(normalizeEmailAddress('joe@exa mple.com')).toBeNull();
    expect(normalizeEmailAddress('joe@[127.0.0.1]')).toBeNull();
  });

  it.each(['a@xn--zz.example', 'a@xn--.example', 'a@xn--abc-.example', 'a@mail.xn--a.example', 'a@XN--ZZ.example'])(
    'refuses an xn-- label that is not valid Punycode of a non-ASCII name (RFC 5890 §2.3.2.1): %s',
    (raw) => {
      expect(normalizeEmailAddress(raw)).toBeNull();
    },
  );

  it('keeps valid A-labels as they are', () => {
    expect(normalizeEmailAddress('a@xn--ls8h.la')).toBe('a@xn--ls8h.la');
    expect(normalizeEmailAddress('a@mail.xn--55qx5d.cn')).toBe('a@mail.xn--55qx5d.cn');
  });

  it('leaves a string without "@" to the address check (which refuses it)', () => {
    expect(normalizeEmailAddress(' Joe ')).toBe('joe');
    expect(isEmail('joe')).toBe(false);
  });

  it('is idempotent, and its output is one IsEmail still accepts when the input was one', () => {
    const local = fc.stringMatching(/^[A-Za-z0-9._%+-]{1,20}$/).filter((s) => !s.startsWith('.') && !s.endsWith('.') && !s.includes('..'));
    const label = fc.constantFrom('Bücher', 'bu\u0308cher', 'EXAMPLE', 'mail', 'xn--bcher-kva', 'Ünïcödé', 'straße', 'παράδειγμα');
    const address = fc.tuple(local, fc.array(label, { minLength: 1, maxLength: 2 }), fc.constantFrom('com', 'example', 'DE')).map(
      ([l, labels, tld]) => `${l}@${[...labels, tld].join('.')}`,
    );
    fc.assert(
      fc.property(address, fc.constantFrom('', ' ', '\t', '\n '), (written, pad) => {
        const once = normalizeEmailAddress(pad + written + pad);
        expect(once).not.toBeNull();
        expect(normalizeEmailAddress(once!)).toBe(once);
        expect(once).toBe(once!.toLowerCase());
        expect(once).toBe(once!.normalize('NFC'));
        expect(once!.split('@')[1]).toMatch(/^[\x21-\x7e]+$/); // the domain is ASCII
        if (isEmail(written)) expect(isEmail(once!)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
