import { Injectable, type PipeTransform } from '@nestjs/common';
import { SessionErrors } from './session.errors.js';

/** The login modes POST /sessions knows: only `email` (a code sent by email). */
export type LoginMode = 'email';

/**
 * The `mode` query parameter of POST /sessions. Synchronous, and declared before the body, so a
 * wrong mode is reported before any body error.
 * @throws ApiError 400 `unsupported_mode` for a missing or other mode
 */
@Injectable()
export class LoginModePipe implements PipeTransform<unknown, LoginMode> {
  transform(value: unknown): LoginMode {
    if (value !== 'email') throw SessionErrors.unsupportedMode();
    return value;
  }
}
