/**
 * Finds the first object member name that appears twice in one object of a JSON text, e.g. the
 * second `otp_code` of `{"otp_code":"1","otp_code":"2"}`. `JSON.parse` keeps the last one silently
 * (RFC 8259 §4 leaves duplicates to the implementation), so a proxy or WAF that reads the first one
 * would see another request than the service acts on; the body is refused instead.
 *
 * Names are compared after JSON unescaping (`"a"` and `"\u0061"` are one name).
 *
 * @param text JSON text that `JSON.parse` has already accepted (no syntax checks are made here)
 * @returns the member's path (`user.email`, `items.0.name`), or null when no object repeats a name
 */
export function findDuplicateMember(text: string): string | null {
  // One frame per open object (its names so far) or array (null), with the path to it.
  const frames: (Set<string> | null)[] = [];
  const path: (string | number)[] = [];
  let expectName = false;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = closingQuote(text, i);
      if (expectName) {
        const raw = text.slice(i + 1, end);
        const name = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const names = frames[frames.length - 1]!;
        path[path.length - 1] = name;
        if (names.has(name)) return path.join('.');
        names.add(name);
        expectName = false;
      }
      i = end;
    } else if (c === OPEN_BRACE) {
      frames.push(new Set());
      path.push('');
      expectName = true;
    } else if (c === OPEN_BRACKET) {
      frames.push(null);
      path.push(0);
      expectName = false;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      frames.pop();
      path.pop();
      expectName = false;
    } else if (c === COMMA) {
      if (frames[frames.length - 1] === null) path[path.length - 1] = (path[path.length - 1] as number) + 1;
      else expectName = true;
    }
  }
  return null;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** Index of the quote that closes the string opened at `open` (one not escaped by a backslash). */
function closingQuote(text: string, open: number): number {
  for (let at = text.indexOf('"', open + 1); ; at = text.indexOf('"', at + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return at;
  }
}
