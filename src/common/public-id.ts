/** RFC 9562 textual form: 8-4-4-4-12 hex digits, either case (version and variant not checked). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type PublicIdPrefix = 'usr' | 'dev' | 'ses';

/** `ses-<uuid>` and friends: the ids clients see; the database keeps the bare UUID. */
export function toPublicId(prefix: PublicIdPrefix, uuid: string): string {
  return `${prefix}-${uuid}`;
}

/** The lower-case UUID inside `<prefix>-<uuid>`, or null when `value` is not of that form. */
export function fromPublicId(prefix: PublicIdPrefix, value: string): string | null {
  if (!value.startsWith(`${prefix}-`)) return null;
  const uuid = value.slice(prefix.length + 1);
  return UUID_PATTERN.test(uuid) ? uuid.toLowerCase() : null;
}
