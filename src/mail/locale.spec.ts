import fc from 'fast-check';
import { negotiateLocale } from './locale.js';

const AVAILABLE = ['de', 'en', 'fr', 'pt-BR'];
const negotiate = (header: string | undefined) => negotiateLocale(header, AVAILABLE, 'en');

describe('negotiateLocale (RFC 4647 §3.4 lookup over Accept-Language)', () => {
  it.each([
    ['de-DE', 'de'],
    ['de', 'de'],
    ['fr-CA;q=0.9, en;q=0.8', 'fr'],
    ['en;q=0.8, fr-CA;q=0.9', 'fr'], // by quality, not by position
    ['de-CH-1996', 'de'], // shortened one subtag at a time
    ['pt-br', 'pt-BR'], // tags compare case-insensitively
    ['pt', 'en'], // lookup never widens: pt does not find pt-BR
    ['es, fr;q=0.5', 'fr'], // the first available range wins
    ['es-ES, it', 'en'], // none available: the default
    ['*', 'en'], // a wildcard names no language (RFC 4647 §3.4: ignored in lookup)
    ['*, de;q=0.5', 'de'],
    ['de;q=0, fr;q=0.1', 'fr'], // q=0 means "not acceptable"
    ['de;q=0', 'en'],
    ['fr;q=0.5, de;q=0.5', 'fr'], // equal quality: header order
  ])('%j → %s', (header, locale) => {
    expect(negotiate(header)).toBe(locale);
  });

  it.each([
    [undefined],
    [''],
    [';;;,,'],
    ['de;q=abc'],
    ['x-klingon'], // a private-use tag alone is no language
    ['123'],
    ['de-DE-invalid-subtag-much-too-long'],
    ['\u00e9\u00e8'],
  ])('malformed or absent %j → the default', (header) => {
    expect(negotiate(header)).toBe('en');
  });

  it('answers with the given fallback', () => {
    expect(negotiateLocale('es', AVAILABLE, 'fr')).toBe('fr');
  });

  it('skips a malformed range and uses the next good one', () => {
    expect(negotiate('de_DE, fr;q=0.8')).toBe('fr');
  });

  it('never throws and always answers an available locale, whatever the header holds', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (header) => {
        expect(AVAILABLE).toContain(negotiate(header));
      }),
      { numRuns: 2000 },
    );
  });
});
