import { plainToInstance, type ClassConstructor } from 'class-transformer';
import { validate, type ValidationError } from 'class-validator';
import { ApiError } from '../common/api-error.js';

/** Keys that could reach an object's prototype if copied onto it; refused before any copying. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Deeper than any DTO. Arrays and objects nested below this are cut off before the (recursive)
 * transform and validation, which would otherwise overflow the stack on a 16 KiB body of `[[[…]]]`.
 */
const MAX_DEPTH = 32;

/**
 * A key refused before any copying: one of FORBIDDEN_KEYS, or the name of an `Object.prototype`
 * member (`toString`, `hasOwnProperty`, …), which class-transformer silently drops instead of letting
 * `forbidNonWhitelisted` see it.
 */
const isForbiddenKey = (key: string): boolean => FORBIDDEN_KEYS.has(key) || Object.hasOwn(Object.prototype, key);

/**
 * Validates a parsed JSON body against a DTO class: unknown properties, wrong JSON types, missing
 * or null fields are refused.
 * @returns the DTO instance, with its transforms (trimming, lower-casing) applied
 * @throws ApiError 400 `validation_failed` naming every offending field in `message` and `fields`
 */
export async function validateBody<T extends object>(dto: ClassConstructor<T>, body: unknown): Promise<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(400, 'validation_failed', 'The request body must be a JSON object.', { fields: [] });
  }
  const forbidden = findForbiddenKey(body, '');
  if (forbidden) throw invalid([`property ${forbidden} should not exist`], [forbidden]);
  cutDeepNesting(body, 0);

  const instance = plainToInstance(dto, body);
  const errors = await validate(instance, {
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    stopAtFirstError: true,
  });
  if (errors.length > 0) {
    const problems = flatten(errors, '');
    throw invalid(
      problems.map((p) => p.message),
      problems.map((p) => p.field),
    );
  }
  return instance;
}

/**
 * Problems named in one answer. A 16 KiB body can hold over a thousand unknown properties; naming
 * each would answer tens of KiB. The rest are counted in the message.
 */
export const MAX_PROBLEMS_NAMED = 20;

function invalid(messages: string[], fields: string[]): ApiError {
  const named = messages.slice(0, MAX_PROBLEMS_NAMED);
  const more = messages.length - named.length;
  const message = named.join('; ') + (more > 0 ? `; and ${more} more` : '');
  return new ApiError(400, 'validation_failed', message, { fields: [...new Set(fields)].slice(0, MAX_PROBLEMS_NAMED) });
}

function flatten(errors: ValidationError[], prefix: string): { field: string; message: string }[] {
  return errors.flatMap((error) => {
    const field = prefix + error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({
      field,
      // class-validator names the bare property; say the full path instead.
      message: message.startsWith(`property ${error.property} `)
        ? message.replace(`property ${error.property} `, `property ${field} `)
        : message.replace(new RegExp(`^${escape(error.property)}\\b`), field),
    }));
    return [...own, ...flatten(error.children ?? [], `${field}.`)];
  });
}

function findForbiddenKey(value: unknown, path: string, depth = 0): string | null {
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return null;
  for (const key of Object.keys(value)) {
    const here = path ? `${path}.${key}` : key;
    if (isForbiddenKey(key)) return here;
    const found = findForbiddenKey((value as Record<string, unknown>)[key], here, depth + 1);
    if (found) return found;
  }
  return null;
}

/**
 * Replaces, in place, every array or object nested MAX_DEPTH levels down with null. No DTO nests
 * that deep, so the body stays invalid at the same field, with the same error.
 */
function cutDeepNesting(value: unknown, depth: number): void {
  if (typeof value !== 'object' || value === null) return;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const child = record[key];
    if (typeof child !== 'object' || child === null) continue;
    if (depth + 1 >= MAX_DEPTH) record[key] = null;
    else cutDeepNesting(child, depth + 1);
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
