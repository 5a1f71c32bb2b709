import { match } from '@formatjs/intl-localematcher';
import Negotiator from 'negotiator';

/** More language ranges than any browser sends; the rest of a longer header is not looked at. */
const MAX_RANGES = 20;

/**
 * The language of a login email: RFC 4647 §3.4 "Lookup" of the `Accept-Language` ranges (RFC 9110
 * §12.5.4), most preferred first, against the available locales; `fallback` when none matches.
 *
 * Ranges are taken in order of their quality value (q=0 means "not acceptable" and is skipped; equal
 * values keep the header's order). Each range is shortened from the end until it names an available
 * locale (`de-CH-1996` → `de-CH` → `de`), so `fr-CA` finds `fr`, but `en` never finds `en-GB`.
 * `*` and malformed ranges match nothing. Never throws, whatever the header holds.
 * @param acceptLanguage the header's value, or undefined when absent
 * @param available canonical BCP 47 tags (`en`, `pt-BR`)
 * @param fallback one of `available` (MAIL_DEFAULT_LOCALE)
 * @returns one of `available`
 */
export function negotiateLocale(acceptLanguage: string | undefined, available: readonly string[], fallback: string): string {
  if (!acceptLanguage) return fallback;
  // Negotiator (jshttp, behind Express's req.acceptsLanguages) parses the q-values and sorts.
  const ranges = new Negotiator({ headers: { 'accept-language': acceptLanguage } }).languages();
  const requested = ranges.slice(0, MAX_RANGES).flatMap((range) => {
    if (range === '*') return [];
    try {
      return Intl.getCanonicalLocales(range);
    } catch {
      return []; // not a well-formed language tag
    }
  });
  if (requested.length === 0) return fallback;
  return match(requested, [...available], fallback, { algorithm: 'lookup' });
}
