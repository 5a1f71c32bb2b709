import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAppConfig } from './app-config.js';
import { DEVELOPMENT_SECRET_FILE, useDevelopmentSecret } from './development-secret.js';
import { ConfigurationError } from './environment.js';

describe('useDevelopmentSecret', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dev-secret-'));
    file = join(dir, '.data', 'dev-secret');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('is kept in the git-ignored data folder by default', () => {
    expect(DEVELOPMENT_SECRET_FILE).toBe('./.data/dev-secret');
  });

  it('makes a secret on first use, in a file of mode 600, and sets APP_SECRET to it', async () => {
    const env: Record<string, string | undefined> = {};
    expect(useDevelopmentSecret(env, file)).toEqual({ path: file, created: true });
    expect(env.APP_SECRET).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await readFile(file, 'utf8')).trim()).toBe(env.APP_SECRET);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    // The configuration takes it as given: codes hashed with it verify after a restart.
    const config = loadAppConfig(env);
    expect({ secret: config.appSecret, generated: config.appSecretGenerated }).toEqual({ secret: env.APP_SECRET, generated: false });
  });

  it('gives every later start (a restart, a hot reload) the same secret', () => {
    const first: Record<string, string | undefined> = { NODE_ENV: 'development' };
    useDevelopmentSecret(first, file);
    const second: Record<string, string | undefined> = { NODE_ENV: 'development' };
    expect(useDevelopmentSecret(second, file)).toEqual({ path: file, created: false });
    expect(second.APP_SECRET).toBe(first.APP_SECRET);
  });

  it('does nothing when APP_SECRET is set', async () => {
    const env = { APP_SECRET: 'x'.repeat(40) };
    expect(useDevelopmentSecret(env, file)).toBeNull();
    expect(env.APP_SECRET).toBe('x'.repeat(40));
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.each(['production', 'test', 'staging'])('does nothing with NODE_ENV=%s (production still requires APP_SECRET)', async (nodeEnv) => {
    const env: Record<string, string | undefined> = { NODE_ENV: nodeEnv };
    expect(useDevelopmentSecret(env, file)).toBeNull();
    expect(env.APP_SECRET).toBeUndefined();
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a file holding fewer than 32 characters, saying what to do', async () => {
    useDevelopmentSecret({}, file);
    await writeFile(file, 'short\n');
    expect(() => useDevelopmentSecret({}, file)).toThrow(ConfigurationError);
    expect(() => useDevelopmentSecret({}, file)).toThrow(/fewer than 32 characters: delete the file/);
  });
});
