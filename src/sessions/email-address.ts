import { Transform } from 'class-transformer';
import { buildMessage, ValidateBy } from 'class-validator';
import { domainToASCII, domainToUnicode } from 'node:url';

/**
 * Characters that are never part of an address as a person reads and types it: controls (Unicode
 * Cc: C0, DEL, C1), invisible ones (Cf and Default_Ignorable_Code_Point: zero-width space and
 * joiners, the byte order mark, soft hyphen, the bidirectional overrides and isolates of UAX #9,
 * variation selectors, the combining grapheme joiner, Hangul fillers), separators other than the
 * ASCII space (Z: no-break and typographic spaces, U+2028, U+2029) and the blank Braille pattern.
 * Allowed, they would make addresses that look the same and are different users (Unicode TR #36
 * "Unicode Security Considerations", §2: invisible characters and spoofing).
 */
const CONTROL_CHARACTER = /[\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}\u2800]|(?! )\p{Z}/u;

/**
 * The one spelling of an email address that is stored, returned and mailed to (SPEC "POST
 * /sessions"): trimmed; Unicode NFC (UAX #15), so composed and decomposed spellings are one; lower
 * case; the domain as its IDNA A-label (UTS #46 via WHATWG URL's `domainToASCII`, as mail software
 * sends it: `bücher.example` → `xn--bcher-kva.example`). Leading and trailing white space (tabs and
 * line breaks included) is trimmed first; a control or invisible character (CONTROL_CHARACTER) left
 * anywhere makes it unusable.
 *
 * @param raw the address as sent
 * @returns the normalized address, or null when it has a control or invisible character, a domain that has no
 *   A-label, or an `xn--` label that is not valid Punycode (the caller refuses it); whether the result is a valid address is checked separately
 *   (class-validator's IsEmail)
 */
export function normalizeEmailAddress(raw: string): string | null {
  const trimmed = raw.trim();
  if (CONTROL_CHARACTER.test(trimmed)) return null;
  // Lower-casing can leave a string that is no longer NFC: normalize on both sides of it.
  const folded = trimmed.normalize('NFC').toLowerCase().normalize('NFC');
  const at = folded.lastIndexOf('@'); // a quoted local part may hold '@'; the domain never does
  if (at < 0) return folded;
  const domain = domainToASCII(folded.slice(at + 1));
  return domain === '' || !hasValidALabels(domain) ? null : `${folded.slice(0, at)}@${domain}`;
}

/**
 * Whether every `xn--` label of an ASCII domain is a real A-label: Punycode that decodes to a
 * non-ASCII U-label and encodes back to the same label (RFC 5890 §2.3.2.1). `xn--zz` is not;
 * Node.js 22 and 24 pass such labels through `domainToASCII` unchanged where Node.js 20 refused them.
 */
function hasValidALabels(domain: string): boolean {
  for (const label of domain.split('.')) {
    if (!label.startsWith('xn--')) continue;
    const unicode = domainToUnicode(label);
    if (!NON_ASCII.test(unicode) || domainToASCII(unicode) !== label) return false;
  }
  return true;
}

const NON_ASCII = /[^\x00-\x7f]/;

/** Whether `value` is already in the form normalizeEmailAddress gives (so it is stored as it is mailed). */
export function isNormalizedEmailAddress(value: string): boolean {
  return normalizeEmailAddress(value) === value;
}

/**
 * class-transformer: replaces a string with its normalized address; one that cannot be normalized
 * is only trimmed, so that the validators name what is wrong with it.
 */
export const NormalizeEmailAddress = () =>
  Transform(({ value }) => (typeof value === 'string' ? (normalizeEmailAddress(value) ?? value.trim()) : value));

/**
 * class-validator: no control, invisible or separator character (CONTROL_CHARACTER) anywhere in a
 * string (other types pass: the type checks name them).
 */
export const HasNoControlCharacters = () =>
  ValidateBy({
    name: 'hasNoControlCharacters',
    validator: {
      validate: (value: unknown) => typeof value !== 'string' || !CONTROL_CHARACTER.test(value),
      defaultMessage: buildMessage((eachPrefix) => `${eachPrefix}$property must not contain control characters or invisible formatting characters (Unicode Cc, Cf, Default_Ignorable_Code_Point, separators other than the space)`),
    },
  });
