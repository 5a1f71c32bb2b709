import { ApiProperty } from '@nestjs/swagger';
import { IsDefined, IsString, Matches } from 'class-validator';
import { OTP_PATTERN } from '../../security/otp.js';

/** Body of PATCH /sessions/{uuid}. */
export class ConfirmSessionDto {
  @ApiProperty({ example: '123456', pattern: '^[0-9]{6}$', description: 'The emailed code: a string of exactly 6 digits.' })
  @IsDefined()
  @IsString()
  @Matches(OTP_PATTERN, { message: '$property must be a string of exactly 6 digits' })
  otp_code: string;
}
