import { ApiProperty } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  buildMessage,
  isEmail,
  IsDefined,
  IsIn,
  IsNotIn,
  IsObject,
  IsString,
  Matches,
  MaxLength,
  ValidateBy,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { UUID_PATTERN } from '../../common/public-id.js';
import { HasNoControlCharacters, isNormalizedEmailAddress, NormalizeEmailAddress } from '../email-address.js';
import { DEVICE_TYPES, type DeviceType } from '../entities/device.entity.js';

/** A whole string of well-formed UTF-16: no lone surrogate. */
const WELL_FORMED_UTF16 = /^(?:[^\uD800-\uDFFF]|[\uD800-\uDBFF][\uDC00-\uDFFF])*$/;

/**
 * class-validator's IsEmail with its default options, except that a string with a lone surrogate
 * fails instead of making validator.js throw (its length check calls `encodeURI`), which was a 500;
 * and an address that could not be normalized (a domain without an IDNA A-label) fails.
 */
const IsEmailAddress = () =>
  ValidateBy({
    name: 'isEmail',
    validator: {
      validate: (value: unknown) =>
        typeof value === 'string' && WELL_FORMED_UTF16.test(value) && isEmail(value) && isNormalizedEmailAddress(value),
      defaultMessage: buildMessage((eachPrefix) => `${eachPrefix}$property must be an email`),
    },
  });

const lowerCase = (trim: boolean) =>
  Transform(({ value }) => (typeof value === 'string' ? (trim ? value.trim() : value).toLowerCase() : value));

export class UserInputDto {
  /** Normalized (email-address.ts) before it is checked and stored; at most 254 characters (RFC 5321). */
  @ApiProperty({
    example: 'joe@example.com',
    maxLength: 254,
    description:
      'Trimmed, Unicode NFC, lower-cased, the domain written as its IDNA A-label (bücher.example → xn--bcher-kva.example), ' +
      'then checked: no control, invisible or separator characters other than the space (Unicode Cc, Cf, Default_Ignorable_Code_Point, Z: e.g. U+0000-U+001F, zero-width and bidi controls, U+00A0, U+2028), at most 254 characters, a valid address. ' +
      'The normalized form is stored, returned and mailed to.',
  })
  @NormalizeEmailAddress()
  @IsDefined()
  @IsString()
  @MaxLength(254)
  @IsEmailAddress()
  @HasNoControlCharacters() // checked first (class-validator runs the last decorator first): the precise message
  email: string;
}

export class DeviceInputDto {
  @ApiProperty({ enum: DEVICE_TYPES, example: 'mobi', description: '`mobi`: a mobile app install; `othr`: anything else.' })
  @IsDefined()
  @IsString()
  @IsIn(DEVICE_TYPES)
  type: DeviceType;

  /** Required for `mobi`, optional for `othr`; `null` is a wrong type, not "absent". */
  @ApiProperty({
    required: false,
    example: '0f8fad5b-d9cb-469f-a165-70867728950e',
    pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
    description: 'Required for mobi, optional for othr; not the nil or max UUID; stored lower-case. null is refused.',
  })
  @ValidateIf((device: DeviceInputDto) => device.type === 'mobi' || device.vendor_uuid !== undefined)
  @IsDefined()
  @IsString()
  @Matches(UUID_PATTERN, { message: '$property must be a UUID (8-4-4-4-12 hex digits)' })
  @IsNotIn(['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff'], {
    message: '$property must not be the nil or max UUID',
  })
  @lowerCase(false)
  vendor_uuid?: string;
}

/** Body of POST /sessions?mode=email. */
export class CreateSessionDto {
  @ApiProperty({ type: UserInputDto })
  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => UserInputDto)
  user: UserInputDto;

  @ApiProperty({ type: DeviceInputDto })
  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => DeviceInputDto)
  device: DeviceInputDto;
}
