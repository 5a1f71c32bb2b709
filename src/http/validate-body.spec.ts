import { ApiError } from '../common/api-error.js';
import { ConfirmSessionDto } from '../sessions/dto/confirm-session.dto.js';
import { CreateSessionDto } from '../sessions/dto/create-session.dto.js';
import { validateBody } from './validate-body.js';

const VENDOR = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';

/** The 400 `validation_failed` ApiError that validating `body` throws; fails the test otherwise. */
async function refusal(dto: Parameters<typeof validateBody>[0], body: unknown): Promise<ApiError> {
  try {
    await validateBody(dto, body);
  } catch (error) {
    expect(error).toBeInstanceOf(ApiError);
    const apiError = error as ApiError;
    expect(apiError.status).toBe(400);
    expect(apiError.code).toBe('validation_failed');
    return apiError;
  }
  throw new Error(`validateBody accepted ${JSON.stringify(body)}`);
}

async function refusedFields(dto: Parameters<typeof validateBody>[0], body: unknown): Promise<string[]> {
  const fields = (await refusal(dto, body)).details.fields as string[];
  return [...fields].sort();
}

/** What express.json() would hand over: keys like `__proto__` become own properties. */
const json = (text: string): unknown => JSON.parse(text);

describe('validateBody', () => {
  describe('body shape', () => {
    it.each([
      ['null', null],
      ['an array', []],
      ['an array of objects', [{ otp_code: '123456' }]],
      ['a string', '{"otp_code":"123456"}'],
      ['a number', 123456],
      ['a boolean', true],
      ['undefined', undefined],
    ])('refuses %s as the body', async (_label, body) => {
      const error = await refusal(ConfirmSessionDto, body);
      expect(error.message).toBe('The request body must be a JSON object.');
      expect(error.details).toEqual({ fields: [] });
    });

    it('refuses an empty object naming the missing fields', async () => {
      expect(await refusedFields(CreateSessionDto, {})).toEqual(['device', 'user']);
      expect(await refusedFields(ConfirmSessionDto, {})).toEqual(['otp_code']);
    });
  });

  describe('forbidden keys', () => {
    it.each([
      ['__proto__ at the top', '{"__proto__":{"admin":true},"otp_code":"123456"}', '__proto__'],
      ['constructor at the top', '{"constructor":{"prototype":{}},"otp_code":"123456"}', 'constructor'],
      ['prototype at the top', '{"prototype":1,"otp_code":"123456"}', 'prototype'],
    ])('refuses %s', async (_label, text, field) => {
      const error = await refusal(ConfirmSessionDto, json(text));
      expect(error.details.fields).toEqual([field]);
      expect(error.message).toBe(`property ${field} should not exist`);
    });

    it('refuses a nested __proto__ with its full path', async () => {
      const body = json(`{"user":{"email":"joe@example.com","__proto__":{"polluted":true}},"device":{"type":"othr"}}`);
      const error = await refusal(CreateSessionDto, body);
      expect(error.details.fields).toEqual(['user.__proto__']);
      expect(error.message).toBe('property user.__proto__ should not exist');
    });

    it('refuses a forbidden key deep inside an unknown property', async () => {
      const body = json(`{"user":{"email":"joe@example.com"},"device":{"type":"othr"},"x":{"y":{"constructor":1}}}`);
      expect((await refusal(CreateSessionDto, body)).details.fields).toEqual(['x.y.constructor']);
    });

    it('does not pollute Object.prototype', async () => {
      await refusal(CreateSessionDto, json('{"__proto__":{"polluted":true}}'));
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  describe('ConfirmSessionDto', () => {
    it('accepts 6 ASCII digits, leading zeros kept', async () => {
      const dto = await validateBody(ConfirmSessionDto, { otp_code: '012345' });
      expect(dto).toBeInstanceOf(ConfirmSessionDto);
      expect(dto.otp_code).toBe('012345');
    });

    it.each([
      ['a number', 123456],
      ['null', null],
      ['an array', ['123456']],
      ['an object', { code: '123456' }],
      ['5 digits', '12345'],
      ['7 digits', '1234567'],
      ['letters', '12345a'],
      ['spaces', ' 123456'],
      ['a trailing newline', '123456\n'],
      ['full-width digits', '１２３４５６'],
      ['Arabic-Indic digits', '١٢٣٤٥٦'],
      ['an empty string', ''],
    ])('refuses an otp_code that is %s', async (_label, otp_code) => {
      const error = await refusal(ConfirmSessionDto, { otp_code });
      expect(error.details.fields).toEqual(['otp_code']);
      expect(error.message).toContain('otp_code');
    });

    it('refuses unknown properties', async () => {
      expect(await refusedFields(ConfirmSessionDto, { otp_code: '123456', extra: 1 })).toEqual(['extra']);
    });

    it('names at most 20 problems and counts the rest, however many unknown properties a body holds', async () => {
      const body: Record<string, unknown> = { otp_code: '123456' };
      for (let i = 0; i < 1_500; i++) body[`k${i}`] = 1;
      const error = await refusal(ConfirmSessionDto, body);
      const fields = error.details.fields as string[];
      expect(fields).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`));
      expect(error.message).toBe(`${fields.map((f) => `property ${f} should not exist`).join('; ')}; and 1480 more`);
    });
  });

  describe('CreateSessionDto', () => {
    it('accepts a mobi device and normalizes email and vendor_uuid', async () => {
      const dto = await validateBody(CreateSessionDto, {
        user: { email: '  Joe.Doe@Example.COM \t' },
        device: { type: 'mobi', vendor_uuid: VENDOR.toUpperCase() },
      });
      expect(dto).toBeInstanceOf(CreateSessionDto);
      expect(dto.user.email).toBe('joe.doe@example.com');
      expect(dto.device.type).toBe('mobi');
      expect(dto.device.vendor_uuid).toBe(VENDOR);
    });

    it('accepts an othr device without vendor_uuid', async () => {
      const dto = await validateBody(CreateSessionDto, { user: { email: 'joe@example.com' }, device: { type: 'othr' } });
      expect(dto.device.type).toBe('othr');
      expect(dto.device.vendor_uuid).toBeUndefined();
    });

    it('accepts an othr device with vendor_uuid, lower-cased', async () => {
      const dto = await validateBody(CreateSessionDto, {
        user: { email: 'joe@example.com' },
        device: { type: 'othr', vendor_uuid: 'ABCDEF01-2345-6789-ABCD-EF0123456789' },
      });
      expect(dto.device.vendor_uuid).toBe('abcdef01-2345-6789-abcd-ef0123456789');
    });

    it('does not check UUID version or variant', async () => {
      const dto = await validateBody(CreateSessionDto, {
        user: { email: 'joe@example.com' },
        device: { type: 'mobi', vendor_uuid: '12345678-1234-1234-1234-123456789abc' },
      });
      expect(dto.device.vendor_uuid).toBe('12345678-1234-1234-1234-123456789abc');
    });

    describe('nested field paths', () => {
      const valid = { user: { email: 'joe@example.com' }, device: { type: 'mobi', vendor_uuid: VENDOR } };

      it.each([
        ['user missing', { device: valid.device }, ['user']],
        ['user null', { ...valid, user: null }, ['user']],
        ['user an array', { ...valid, user: [{ email: 'joe@example.com' }] }, ['user']],
        ['user a string', { ...valid, user: 'joe@example.com' }, ['user']],
        ['device missing', { user: valid.user }, ['device']],
        ['device null', { ...valid, device: null }, ['device']],
        ['both missing', {}, ['device', 'user']],
        ['email missing', { ...valid, user: {} }, ['user.email']],
        ['email null', { ...valid, user: { email: null } }, ['user.email']],
        ['email a number', { ...valid, user: { email: 42 } }, ['user.email']],
        ['email an array', { ...valid, user: { email: ['joe@example.com'] } }, ['user.email']],
        ['email not an address', { ...valid, user: { email: 'joe' } }, ['user.email']],
        ['email empty after trimming', { ...valid, user: { email: '   ' } }, ['user.email']],
        ['type missing', { ...valid, device: { vendor_uuid: VENDOR } }, ['device.type']],
        ['type unknown', { ...valid, device: { type: 'tablet', vendor_uuid: VENDOR } }, ['device.type']],
        ['type in upper case', { ...valid, device: { type: 'MOBI', vendor_uuid: VENDOR } }, ['device.type']],
        ['type a number', { ...valid, device: { type: 1, vendor_uuid: VENDOR } }, ['device.type']],
        ['mobi without vendor_uuid', { ...valid, device: { type: 'mobi' } }, ['device.vendor_uuid']],
        ['mobi with null vendor_uuid', { ...valid, device: { type: 'mobi', vendor_uuid: null } }, ['device.vendor_uuid']],
        ['othr with null vendor_uuid', { ...valid, device: { type: 'othr', vendor_uuid: null } }, ['device.vendor_uuid']],
        ['vendor_uuid a number', { ...valid, device: { type: 'mobi', vendor_uuid: 1 } }, ['device.vendor_uuid']],
        ['vendor_uuid not a UUID', { ...valid, device: { type: 'mobi', vendor_uuid: 'not-a-uuid' } }, ['device.vendor_uuid']],
        ['vendor_uuid with spaces', { ...valid, device: { type: 'mobi', vendor_uuid: ` ${VENDOR}` } }, ['device.vendor_uuid']],
        ['vendor_uuid in braces', { ...valid, device: { type: 'mobi', vendor_uuid: `{${VENDOR}}` } }, ['device.vendor_uuid']],
        ['unknown top-level property', { ...valid, admin: true }, ['admin']],
        ['unknown user property', { ...valid, user: { email: 'joe@example.com', name: 'Joe' } }, ['user.name']],
        ['unknown device property', { ...valid, device: { ...valid.device, os: 'ios' } }, ['device.os']],
        [
          'errors in both nested objects',
          { user: { email: 5 }, device: { type: 'x', vendor_uuid: VENDOR } },
          ['device.type', 'user.email'],
        ],
      ])('%s', async (_label, body, fields) => {
        expect(await refusedFields(CreateSessionDto, body)).toEqual(fields);
      });

      it('names the full path in the message', async () => {
        const error = await refusal(CreateSessionDto, { ...valid, user: { email: 'joe', name: 'Joe' } });
        expect(error.message).toContain('user.email must be an email');
        expect(error.message).toContain('property user.name should not exist');
      });
    });

    describe('nil and max UUIDs', () => {
      it.each([
        '00000000-0000-0000-0000-000000000000',
        'ffffffff-ffff-ffff-ffff-ffffffffffff',
        'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
      ])('refuses %s', async (vendor_uuid) => {
        for (const type of ['mobi', 'othr']) {
          const error = await refusal(CreateSessionDto, { user: { email: 'joe@example.com' }, device: { type, vendor_uuid } });
          expect(error.details.fields).toEqual(['device.vendor_uuid']);
          expect(error.message).toContain('device.vendor_uuid must not be the nil or max UUID');
        }
      });
    });

    describe('email length (at most 254 after trimming)', () => {
      // 64-character local part + '@' + 189-character domain = 254.
      const domain = `${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(57)}.com`;
      const longest = `${'a'.repeat(64)}@${domain}`;

      it('accepts 254 characters, surrounded by spaces', async () => {
        expect(longest).toHaveLength(254);
        const dto = await validateBody(CreateSessionDto, { user: { email: `  ${longest.toUpperCase()}  ` }, device: { type: 'othr' } });
        expect(dto.user.email).toBe(longest);
      });

      it('refuses 255 characters', async () => {
        const tooLong = `${'a'.repeat(64)}@e${domain}`;
        expect(tooLong).toHaveLength(255);
        expect(await refusedFields(CreateSessionDto, { user: { email: tooLong }, device: { type: 'othr' } })).toEqual([
          'user.email',
        ]);
      });
    });
  });
});
