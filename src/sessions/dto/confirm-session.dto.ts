import { IsDefined, IsString, Matches } from 'class-validator';
import { OTP_PATTERN } from '../../security/otp.js';

/** Body of PATCH /sessions/{uuid}. */
export class ConfirmSessionDto {
  @IsDefined()
  @IsString()
  @Matches(OTP_PATTERN, { message: '$property must be a string of exactly 6 digits' })
  otp_code: string;
}
