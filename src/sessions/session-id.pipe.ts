import { Injectable, type PipeTransform } from '@nestjs/common';
import { fromPublicId } from '../common/public-id.js';
import { SessionErrors } from './session.errors.js';

/**
 * The `:uuid` route parameter: `ses-<uuid>` (RFC 9562 textual form, either case) to the bare,
 * lower-case UUID the database keys on.
 * @throws ApiError 400 `validation_failed` with `fields: ["uuid"]` for anything else
 */
@Injectable()
export class SessionIdPipe implements PipeTransform<string, string> {
  transform(value: string): string {
    const id = fromPublicId('ses', value);
    if (!id) throw SessionErrors.invalidSessionId();
    return id;
  }
}
