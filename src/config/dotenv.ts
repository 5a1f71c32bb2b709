import { existsSync } from 'node:fs';

/**
 * Loads `.env` from the working directory into `process.env` (variables already set win),
 * using Node's built-in parser.
 */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}
