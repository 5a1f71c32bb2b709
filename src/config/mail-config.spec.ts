import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAppConfig } from './app-config.js';
import { ConfigurationError } from './environment.js';

const PEM = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

function configError(raw: Record<string, string>): string {
  try {
    loadAppConfig(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error(`loadAppConfig(${JSON.stringify(raw)}) did not throw`);
}

describe('mail settings', () => {
  it('defaults: APP_NAME "Session Management", English, no support address, no DKIM', () => {
    const config = loadAppConfig({});
    expect(config.appName).toBe('Session Management');
    expect(config.mail).toMatchObject({ templatesDir: null, defaultLocale: 'en', supportAddress: null, dkim: null, concurrency: 20 });
  });

  it('MAIL_CONCURRENCY: mails sent at once, a whole number from 1 to 100', () => {
    expect(loadAppConfig({ MAIL_CONCURRENCY: '4' }).mail.concurrency).toBe(4);
    expect(configError({ MAIL_CONCURRENCY: '0' })).toContain('MAIL_CONCURRENCY must not be less than 1');
    expect(configError({ MAIL_CONCURRENCY: '101' })).toContain('MAIL_CONCURRENCY must not be greater than 100');
    expect(configError({ MAIL_CONCURRENCY: 'many' })).toContain('MAIL_CONCURRENCY');
  });

  it('MAIL_WORKER: inline (the default) or off', () => {
    expect(loadAppConfig({}).mail.worker).toBe('inline');
    expect(loadAppConfig({ MAIL_WORKER: 'inline' }).mail.worker).toBe('inline');
    expect(loadAppConfig({ MAIL_WORKER: ' off ' }).mail.worker).toBe('off');
    expect(configError({ MAIL_WORKER: 'process' })).toBe('Invalid configuration:\n  MAIL_WORKER="process": MAIL_WORKER must be inline or off');
    expect(configError({ MAIL_WORKER: 'OFF' })).toContain('MAIL_WORKER="OFF": MAIL_WORKER must be inline or off');
  });

  it('reads APP_NAME, MAIL_TEMPLATES_DIR, MAIL_SUPPORT_ADDRESS and canonicalizes MAIL_DEFAULT_LOCALE', () => {
    const config = loadAppConfig({
      APP_NAME: 'Acme Cloud',
      MAIL_TEMPLATES_DIR: '/etc/sessions/mail',
      MAIL_DEFAULT_LOCALE: 'pt-br',
      MAIL_SUPPORT_ADDRESS: 'help@acme.example',
    });
    expect(config.appName).toBe('Acme Cloud');
    expect(config.mail).toMatchObject({
      templatesDir: '/etc/sessions/mail',
      defaultLocale: 'pt-BR',
      supportAddress: 'help@acme.example',
    });
  });

  it.each([
    [{ MAIL_DEFAULT_LOCALE: 'english' }, 'MAIL_DEFAULT_LOCALE="english": MAIL_DEFAULT_LOCALE must be a BCP 47 language tag'],
    [{ MAIL_DEFAULT_LOCALE: 'de_DE' }, 'MAIL_DEFAULT_LOCALE="de_DE": MAIL_DEFAULT_LOCALE must be a BCP 47 language tag'],
    [{ MAIL_SUPPORT_ADDRESS: 'not an address' }, 'MAIL_SUPPORT_ADDRESS="not an address": MAIL_SUPPORT_ADDRESS must be an email address'],
    [{ APP_NAME: 'a'.repeat(101) }, 'APP_NAME='],
    [{ DKIM_DOMAIN: 'not a domain' }, 'DKIM_DOMAIN="not a domain": DKIM_DOMAIN must be a domain name'],
    [{ DKIM_SELECTOR: 'bad selector' }, 'DKIM_SELECTOR="bad selector": DKIM_SELECTOR must be a DKIM selector'],
  ])('refuses %j', (env, message) => {
    expect(configError(env)).toContain(message);
  });

  it('refuses an APP_NAME with a line break (it goes into the subject header)', () => {
    expect(configError({ APP_NAME: 'Acme\r\nBcc: x@example.com' })).toContain('APP_NAME=');
  });

  describe('DKIM', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'dkim-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('takes the key as PEM text, with \\n written literally as one-line .env files need', () => {
      const config = loadAppConfig({ DKIM_DOMAIN: 'example.com', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: PEM.replace(/\n/g, '\\n') });
      expect(config.mail.dkim).toEqual({ domainName: 'example.com', keySelector: 's1', privateKey: PEM });
    });

    it('takes the key from a file when the value is a path', () => {
      const file = join(dir, 'dkim.pem');
      writeFileSync(file, PEM);
      const config = loadAppConfig({ DKIM_DOMAIN: 'example.com', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: file });
      expect(config.mail.dkim?.privateKey).toBe(PEM);
    });

    it('needs all three variables, and names the missing ones', () => {
      const message = configError({ DKIM_DOMAIN: 'example.com' });
      expect(message).toContain('DKIM_SELECTOR, DKIM_PRIVATE_KEY must be set too');
    });

    it('is reported with the other invalid settings in one message, and an invalid DKIM_DOMAIN is not called missing', () => {
      const message = configError({ PORT: '0', DKIM_DOMAIN: 'not a domain', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: join(dir, 'absent.pem') });
      expect(message).toContain('PORT="0"');
      expect(message).toContain('DKIM_DOMAIN="not a domain"');
      expect(message).toContain('DKIM_PRIVATE_KEY: not PEM text');
      expect(message).not.toContain('must be set too');
    });

    it('refuses a missing key file, naming DKIM_PRIVATE_KEY', () => {
      const message = configError({ DKIM_DOMAIN: 'example.com', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: join(dir, 'absent.pem') });
      expect(message).toContain('DKIM_PRIVATE_KEY: not PEM text');
      expect(message).toContain('ENOENT');
    });

    it('refuses PEM text that is not a private key, without showing it', () => {
      const bad = '-----BEGIN PRIVATE KEY-----\\nbm90IGEga2V5\\n-----END PRIVATE KEY-----';
      const message = configError({ DKIM_DOMAIN: 'example.com', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY: bad });
      expect(message).toContain('DKIM_PRIVATE_KEY: not a PEM private key');
      expect(message).not.toContain('bm90IGEga2V5');
    });
  });
});
