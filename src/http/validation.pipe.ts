import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { validateBody } from './validate-body.js';

/**
 * Validates a handler's `@Body()` against its declared DTO class (class-validator): unknown
 * properties anywhere, wrong JSON types, missing or null fields are refused with 400
 * `validation_failed` naming every offending field in `fields`, before the handler runs. The DTO
 * instance it hands on has the DTO's transforms applied (trimming, lower-casing).
 *
 * NestJS's own ValidationPipe is not used: with the same class-validator options it still misses
 * what validateBody checks first (prototype-polluting keys, nesting deep enough to overflow the
 * transform's stack), and its error body has another shape.
 */
@Injectable()
export class BodyValidationPipe implements PipeTransform {
  async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const dto = metadata.metatype;
    if (metadata.type !== 'body' || !dto || dto === Object) return value;
    return validateBody(dto as new () => object, value);
  }
}
