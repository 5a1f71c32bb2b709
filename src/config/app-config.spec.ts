import { loadAppConfig } from './app-config.js';
import { ConfigurationError } from './environment.js';

const SECRET = 's'.repeat(32);
const SMTP = 'smtp://mail.example.com:587';
const DB = 'postgres://app:pw@db.example.com:5432/sessions';

/** The message of the ConfigurationError that `load` throws; fails the test when it does not throw one. */
function configError(raw: Record<string, string | undefined>): string {
  try {
    loadAppConfig(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).name).toBe('ConfigurationError');
    return (error as Error).message;
  }
  throw new Error(`loadAppConfig(${JSON.stringify(raw)}) did not throw`);
}

describe('loadAppConfig', () => {
  describe('defaults (empty environment = development)', () => {
    const config = loadAppConfig({});

    it('runs as development on port 8080', () => {
      expect(config.nodeEnv).toBe('development');
      expect(config.port).toBe(8080);
    });

    it('uses the OTP defaults', () => {
      expect(config.otp).toEqual({ ttl: 300, maxAttempts: 5, resendCooldown: 60, maxSendsPerHour: 10 });
    });

    it('uses the session TTL defaults: othr 2 h, mobi never', () => {
      expect(config.session).toMatchObject({ othrTtl: 7200, mobiTtl: null });
    });

    it('starts the embedded PostgreSQL in ./.data/postgres', () => {
      expect(config.database).toEqual({ kind: 'embedded', dataDir: './.data/postgres', port: 54329 });
    });

    it('prints mail to the log (no SMTP_URL) and logs at debug', () => {
      expect(config.mail.smtpUrl).toBeNull();
      expect(config.mail.from).toBe('Sessions <no-reply@localhost>');
      expect(config.logLevel).toBe('debug');
    });

    it('generates a random secret of at least 32 characters', () => {
      expect(config.appSecretGenerated).toBe(true);
      expect(config.appSecret.length).toBeGreaterThanOrEqual(32);
      expect(loadAppConfig({}).appSecret).not.toBe(config.appSecret);
    });
  });

  it('reads every documented value', () => {
    const config = loadAppConfig({
      NODE_ENV: 'production',
      PORT: '3000',
      DATABASE_URL: DB,
      APP_SECRET: SECRET,
      SMTP_URL: SMTP,
      MAIL_FROM: 'Login <login@example.com>',
      OTP_TTL: '120',
      OTP_MAX_ATTEMPTS: '3',
      OTP_RESEND_COOLDOWN: '0',
      OTP_MAX_SENDS_PER_HOUR: '20',
      OTHR_SESSION_TTL: '600',
      MOBI_SESSION_TTL: '86400',
      LOG_LEVEL: 'warn',
      HOST: '10.0.0.5',
    });
    // toMatchObject: other settings are being added beside these.
    expect(config).toMatchObject({
      nodeEnv: 'production',
      port: 3000,
      database: { kind: 'url', url: DB },
      appSecret: SECRET,
      appSecretGenerated: false,
      mail: { smtpUrl: SMTP, from: 'Login <login@example.com>' },
      otp: { ttl: 120, maxAttempts: 3, resendCooldown: 0, maxSendsPerHour: 20 },
      session: { othrTtl: 600, mobiTtl: 86_400 },
      logLevel: 'warn',
      host: '10.0.0.5',
    });
  });

  it('logs at info ("log") by default in production', () => {
    expect(loadAppConfig({ NODE_ENV: 'production', APP_SECRET: SECRET, SMTP_URL: SMTP, DATABASE_URL: DB }).logLevel).toBe('info');
  });

  describe('LOG_LEVEL', () => {
    it.each([
      ['fatal', 'fatal'],
      ['error', 'error'],
      ['warn', 'warn'],
      ['info', 'info'],
      ['log', 'info'],
      ['debug', 'debug'],
      ['trace', 'trace'],
      ['verbose', 'trace'],
    ])('accepts %s (the logger level %s)', (name, level) => {
      expect(loadAppConfig({ LOG_LEVEL: name }).logLevel).toBe(level);
    });

    it('refuses other names, listing the accepted ones', () => {
      expect(configError({ LOG_LEVEL: 'warning' })).toContain(
        'LOG_LEVEL="warning": LOG_LEVEL must be one of fatal, error, warn, info, log, debug, trace, verbose',
      );
    });
  });

  describe('HOST (listen address)', () => {
    it('is localhost (loopback only) in development: the log shows login codes there', () => {
      expect(loadAppConfig({}).host).toBe('localhost');
      expect(loadAppConfig({ NODE_ENV: 'development' }).host).toBe('localhost');
    });

    it('is every address (null) outside development', () => {
      expect(loadAppConfig({ NODE_ENV: 'production', APP_SECRET: SECRET, SMTP_URL: SMTP, DATABASE_URL: DB }).host).toBeNull();
      expect(loadAppConfig({ NODE_ENV: 'test', SMTP_URL: SMTP }).host).toBeNull();
    });

    it.each(['0.0.0.0', '::', '127.0.0.1', '::1', 'api.internal'])('takes HOST=%s as given', (host) => {
      expect(loadAppConfig({ HOST: host }).host).toBe(host);
      expect(loadAppConfig({ NODE_ENV: 'production', APP_SECRET: SECRET, SMTP_URL: SMTP, DATABASE_URL: DB, HOST: host }).host).toBe(host);
    });

    it('refuses a value that is no address', () => {
      expect(configError({ HOST: 'http://0.0.0.0' })).toMatch(/^\s*HOST="http:\/\/0\.0\.0\.0": HOST must be an IP address or host name/m);
    });
  });

  describe('EMBEDDED_DB_PORT', () => {
    it('is 54329 by default, and configurable', () => {
      expect(loadAppConfig({}).database).toMatchObject({ kind: 'embedded', port: 54329 });
      expect(loadAppConfig({ EMBEDDED_DB_PORT: '60001' }).database).toMatchObject({ kind: 'embedded', port: 60001 });
    });

    it.each(['abc', '0', '65536', '5432.5'])('refuses %j as a port', (value) => {
      expect(configError({ EMBEDDED_DB_PORT: value })).toContain(
        `EMBEDDED_DB_PORT=${JSON.stringify(value)}: EMBEDDED_DB_PORT must be a whole number, a TCP port from 1 to 65535`,
      );
    });
  });

  it('trims values', () => {
    const config = loadAppConfig({ PORT: ' 9000 ', OTP_TTL: '\t60\n' });
    expect(config.port).toBe(9000);
    expect(config.otp.ttl).toBe(60);
  });

  it('ignores variables it does not know', () => {
    expect(loadAppConfig({ HOME: '/root', PATH: '/usr/bin', SOMETHING: 'x' }).port).toBe(8080);
  });

  describe('database', () => {
    it('uses DATABASE_URL (postgres:// or postgresql://)', () => {
      expect(loadAppConfig({ DATABASE_URL: DB }).database).toEqual({ kind: 'url', url: DB });
      const alt = 'postgresql://localhost/sessions';
      expect(loadAppConfig({ DATABASE_URL: alt }).database).toEqual({ kind: 'url', url: alt });
    });

    it('uses the DB_* parts with their defaults when only DB_HOST is given', () => {
      expect(loadAppConfig({ DB_HOST: 'db' }).database).toEqual({
        kind: 'parts',
        host: 'db',
        port: 5432,
        username: 'postgres',
        password: '',
        database: 'sessiondb',
      });
    });

    it('uses every DB_* part', () => {
      expect(
        loadAppConfig({ DB_HOST: 'db', DB_PORT: '6543', DB_USERNAME: 'app', DB_PASSWORD: 'p@ss', DB_NAME: 'logins' }).database,
      ).toEqual({ kind: 'parts', host: 'db', port: 6543, username: 'app', password: 'p@ss', database: 'logins' });
    });

    it('prefers DATABASE_URL over DB_* parts', () => {
      expect(loadAppConfig({ DATABASE_URL: DB, DB_HOST: 'other', DB_PORT: '1' }).database).toEqual({ kind: 'url', url: DB });
    });

    it('uses EMBEDDED_DB_DIR for the embedded server', () => {
      expect(loadAppConfig({ EMBEDDED_DB_DIR: './.data/pg2' }).database).toEqual({ kind: 'embedded', dataDir: './.data/pg2', port: 54329 });
    });

    it('ignores DB_* parts without DB_HOST', () => {
      expect(loadAppConfig({ DB_PORT: '5433', DB_NAME: 'x' }).database).toEqual({ kind: 'embedded', dataDir: './.data/postgres', port: 54329 });
    });
  });

  describe('invalid values stop the start, naming the variable', () => {
    it.each([
      ['OTP_TTL', 'abc'],
      ['OTP_TTL', '1.5'],
      ['OTP_TTL', '0'],
      ['OTP_TTL', '-5'],
      ['OTP_TTL', '1e3'],
      ['OTP_TTL', '0x10'],
      ['PORT', '70000'],
      ['PORT', '0'],
      ['PORT', 'http'],
      ['DB_PORT', '65536'],
      ['OTP_MAX_ATTEMPTS', '0'],
      ['OTP_MAX_ATTEMPTS', '101'],
      ['OTP_RESEND_COOLDOWN', '-1'],
      ['OTP_RESEND_COOLDOWN', '2.5'],
      ['OTP_MAX_SENDS_PER_HOUR', '0'],
      ['OTHR_SESSION_TTL', '0'],
      ['MOBI_SESSION_TTL', 'never'],
      ['APP_SECRET', 'short'],
      ['APP_SECRET', 's'.repeat(31)],
      ['DATABASE_URL', 'mysql://localhost/db'],
      ['SMTP_URL', 'http://mail.example.com'],
      ['LOG_LEVEL', 'warning'],
      ['HOST', 'a b'],
      ['EMBEDDED_DB_PORT', 'x'],
      ['SHUTDOWN_DELAY', '-1'],
      ['SHUTDOWN_DELAY', '1.5'],
      ['WEB_UI', 'yes'],
      ['WEB_UI', '1'],
    ])('%s=%j', (name, value) => {
      const message = configError({ [name]: value });
      expect(message).toMatch(new RegExp(`^\\s*${name}=`, 'm'));
    });

    it.each(['staging', 'qa', 'preview', 'test', 'Production-EU'])('accepts NODE_ENV=%s, with SMTP_URL', (nodeEnv) => {
      const config = loadAppConfig({ NODE_ENV: nodeEnv, SMTP_URL: SMTP });
      expect(config.nodeEnv).toBe(nodeEnv);
      expect(config.mail.smtpUrl).toBe(SMTP);
    });

    it.each(['staging', 'qa', 'preview'])('refuses NODE_ENV=%s without SMTP_URL, saying why', (nodeEnv) => {
      expect(configError({ NODE_ENV: nodeEnv })).toContain(`SMTP_URL is required when NODE_ENV=${nodeEnv}`);
    });

    it('SHUTDOWN_DELAY: whole seconds, default 0', () => {
      expect(loadAppConfig({}).shutdownDelay).toBe(0);
      expect(loadAppConfig({ SHUTDOWN_DELAY: '5' }).shutdownDelay).toBe(5);
      expect(configError({ SHUTDOWN_DELAY: 'soon' })).toContain('SHUTDOWN_DELAY must be a whole number of seconds, at least 0');
    });

    it('says what a duration must be', () => {
      expect(configError({ OTP_TTL: '1.5' })).toContain('OTP_TTL must be a whole number of seconds, at least 1');
      expect(configError({ OTP_RESEND_COOLDOWN: '-1' })).toContain('OTP_RESEND_COOLDOWN must be a whole number of seconds, at least 0');
    });

    it.each(['PORT', 'DB_PORT'])('says that %s must be a whole number (a port), whatever is wrong with it', (name) => {
      for (const value of ['abc', '1.5', '0', '70000', '-1']) {
        expect(configError({ [name]: value })).toContain(
          `${name}=${JSON.stringify(value)}: ${name} must be a whole number, a TCP port from 1 to 65535`,
        );
      }
    });

    it('says how long APP_SECRET must be', () => {
      expect(configError({ APP_SECRET: 'short' })).toContain('APP_SECRET must be at least 32 characters long');
    });

    it.each([
      ['APP_SECRET', '0123456789abcdef0123456789abcde'],
      ['DATABASE_URL', 'mysql://user:SuperSecretPw@db/x'],
      ['SMTP_URL', 'http://user:SmtpPw@mail.example'],
    ])('never prints the value of %s, only its length', (name, value) => {
      const message = configError({ [name]: value });
      expect(message).toContain(`${name}=(${value.length} characters, not shown)`);
      expect(message).not.toContain(value);
      expect(message).not.toMatch(/SuperSecretPw|SmtpPw|0123456789abcdef/);
    });

    it('names every invalid variable at once', () => {
      const message = configError({ OTP_TTL: 'abc', PORT: '70000', APP_SECRET: 'short' });
      expect(message).toContain('OTP_TTL=');
      expect(message).toContain('PORT=');
      expect(message).toContain('APP_SECRET=');
    });

    it('accepts the boundaries', () => {
      const config = loadAppConfig({ PORT: '65535', OTP_TTL: '1', OTP_RESEND_COOLDOWN: '0', APP_SECRET: 's'.repeat(32) });
      expect(config.port).toBe(65535);
      expect(config.otp.ttl).toBe(1);
      expect(config.otp.resendCooldown).toBe(0);
      expect(config.appSecretGenerated).toBe(false);
    });
  });

  describe('production requirements', () => {
    it('lists every missing setting and every invalid value at once', () => {
      const message = configError({ NODE_ENV: 'production', PORT: 'abc', OTP_TTL: '0', TRUST_PROXY: '10.0.0.0/99' });
      expect(message.split('\n')).toEqual([
        'Invalid configuration:',
        '  PORT="abc": PORT must be a whole number, a TCP port from 1 to 65535',
        '  OTP_TTL="0": OTP_TTL must be a whole number of seconds, at least 1',
        '  APP_SECRET (at least 32 characters) is required when NODE_ENV=production',
        '  SMTP_URL is required when NODE_ENV=production',
        '  DATABASE_URL (or DB_HOST) is required when NODE_ENV=production',
        expect.stringMatching(/^  TRUST_PROXY="10\.0\.0\.0\/99": /),
      ]);
    });

    it('an invalid APP_SECRET is reported as invalid, not also as missing', () => {
      const message = configError({ NODE_ENV: 'production', APP_SECRET: 'short', SMTP_URL: SMTP, DATABASE_URL: DB });
      expect(message).toContain('APP_SECRET=(5 characters, not shown): APP_SECRET must be at least 32 characters long');
      expect(message).not.toContain('is required');
    });

    it('names APP_SECRET, SMTP_URL and the database when all are missing', () => {
      const message = configError({ NODE_ENV: 'production' });
      expect(message).toContain('APP_SECRET');
      expect(message).toContain('SMTP_URL');
      expect(message).toContain('DATABASE_URL');
      expect(message).toContain('DB_HOST');
    });

    it('requires APP_SECRET', () => {
      const message = configError({ NODE_ENV: 'production', SMTP_URL: SMTP, DATABASE_URL: DB });
      expect(message).toContain('APP_SECRET');
      expect(message).not.toContain('SMTP_URL');
      expect(message).not.toContain('DATABASE_URL');
    });

    it('requires SMTP_URL', () => {
      const message = configError({ NODE_ENV: 'production', APP_SECRET: SECRET, DATABASE_URL: DB });
      expect(message).toContain('SMTP_URL');
      expect(message).not.toContain('APP_SECRET');
    });

    it('requires a database (no embedded server in production)', () => {
      const message = configError({ NODE_ENV: 'production', APP_SECRET: SECRET, SMTP_URL: SMTP });
      expect(message).toContain('DATABASE_URL');
      expect(message).not.toContain('APP_SECRET');
      expect(message).not.toContain('SMTP_URL');
    });

    it('accepts DB_HOST as the database', () => {
      const config = loadAppConfig({ NODE_ENV: 'production', APP_SECRET: SECRET, SMTP_URL: SMTP, DB_HOST: 'db' });
      expect(config.database.kind).toBe('parts');
      expect(config.appSecret).toBe(SECRET);
      expect(config.appSecretGenerated).toBe(false);
    });

    it('never generates a secret', () => {
      expect(configError({ NODE_ENV: 'production', SMTP_URL: SMTP, DATABASE_URL: DB })).toContain('APP_SECRET');
    });
  });

  describe('NODE_ENV=test', () => {
    it('requires SMTP_URL (mail is never printed outside development)', () => {
      const message = configError({ NODE_ENV: 'test' });
      expect(message).toContain('SMTP_URL');
      expect(message).toContain('NODE_ENV=test');
    });

    it('starts with SMTP_URL, generating a secret and using the embedded database', () => {
      const config = loadAppConfig({ NODE_ENV: 'test', SMTP_URL: SMTP });
      expect(config.nodeEnv).toBe('test');
      expect(config.appSecretGenerated).toBe(true);
      expect(config.database.kind).toBe('embedded');
    });
  });

  describe('development', () => {
    it('generates a secret when APP_SECRET is unset', () => {
      const config = loadAppConfig({ NODE_ENV: 'development' });
      expect(config.appSecretGenerated).toBe(true);
      expect(config.appSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    });

    it('uses a given APP_SECRET', () => {
      const config = loadAppConfig({ NODE_ENV: 'development', APP_SECRET: SECRET });
      expect(config.appSecretGenerated).toBe(false);
      expect(config.appSecret).toBe(SECRET);
    });
  });

  describe('empty strings count as unset', () => {
    it('falls back to every default', () => {
      const empty = {
        NODE_ENV: '',
        PORT: '',
        DATABASE_URL: '',
        DB_HOST: '',
        APP_SECRET: '',
        SMTP_URL: '',
        MAIL_FROM: '',
        OTP_TTL: '',
        OTP_MAX_ATTEMPTS: '',
        OTP_RESEND_COOLDOWN: '',
        OTP_MAX_SENDS_PER_HOUR: '',
        OTHR_SESSION_TTL: '',
        MOBI_SESSION_TTL: '',
        EMBEDDED_DB_DIR: '',
        LOG_LEVEL: '',
        MAIL_WORKER: '',
      };
      const config = loadAppConfig(empty);
      expect(config.nodeEnv).toBe('development');
      expect(config.port).toBe(8080);
      expect(config.database).toEqual({ kind: 'embedded', dataDir: './.data/postgres', port: 54329 });
      expect(config.appSecretGenerated).toBe(true);
      expect(config.mail).toEqual({
        smtpUrl: null,
        from: 'Sessions <no-reply@localhost>',
        templatesDir: null,
        defaultLocale: 'en',
        supportAddress: null,
        dkim: null,
        concurrency: 20,
        worker: 'inline',
      });
      expect(config.otp).toEqual({ ttl: 300, maxAttempts: 5, resendCooldown: 60, maxSendsPerHour: 10 });
      expect(config.session).toMatchObject({ othrTtl: 7200, mobiTtl: null });
      expect(config.logLevel).toBe('debug');
    });

    it('whitespace-only values count as unset too', () => {
      expect(loadAppConfig({ PORT: '   ', MOBI_SESSION_TTL: ' ' }).port).toBe(8080);
    });

    it('an empty APP_SECRET, SMTP_URL or DATABASE_URL does not satisfy production', () => {
      const message = configError({ NODE_ENV: 'production', APP_SECRET: '', SMTP_URL: '', DATABASE_URL: '', DB_HOST: '' });
      expect(message).toContain('APP_SECRET');
      expect(message).toContain('SMTP_URL');
      expect(message).toContain('DATABASE_URL');
    });

    it('an empty SMTP_URL does not satisfy NODE_ENV=test', () => {
      expect(configError({ NODE_ENV: 'test', SMTP_URL: '' })).toContain('SMTP_URL');
    });
  });
});

describe('WEB_UI (the page at /)', () => {
  const production = { NODE_ENV: 'production', APP_SECRET: SECRET, SMTP_URL: SMTP, DATABASE_URL: DB };

  it('is on by default in development and test, off in production', () => {
    expect(loadAppConfig({}).webUi).toBe(true);
    expect(loadAppConfig({ NODE_ENV: 'test', SMTP_URL: SMTP }).webUi).toBe(true);
    expect(loadAppConfig(production).webUi).toBe(false);
  });

  it('follows an explicit true or false in every environment', () => {
    expect(loadAppConfig({ ...production, WEB_UI: 'true' }).webUi).toBe(true);
    expect(loadAppConfig({ WEB_UI: 'false' }).webUi).toBe(false);
    expect(loadAppConfig({ WEB_UI: '' }).webUi).toBe(true);
  });

  it('says which values it accepts', () => {
    expect(configError({ WEB_UI: 'on' })).toContain('WEB_UI="on": WEB_UI must be true or false');
  });
});
