import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

/**
 * The Compose files and the Dockerfile, checked without a Docker engine: they parse (the `yaml`
 * package), and say what the README promises: PostgreSQL, the API on :8080, Adminer on :8081 and
 * Mailpit on :8025, the API's mail going to Mailpit; and a development mode (the override file)
 * that runs `npm run start:dev` on the mounted sources with NODE_ENV=development, on Node.js 24.
 */

type Json = Record<string, any>;
const ROOT = resolve(import.meta.dirname, '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const compose = (file: string): Json => parse(read(file), { strict: true, uniqueKeys: true });

/** Compose's merge of an override file into a service (the keys these files use). */
function mergeService(base: Json, override: Json): Json {
  // `build: .` is the short form of `build: { context: . }`.
  const merged: Json = typeof base.build === 'string' ? { ...base, build: { context: base.build } } : { ...base };
  for (const [key, value] of Object.entries(override)) {
    if (key === 'command') merged[key] = value; // replaced
    else if (key === 'volumes' || key === 'ports') merged[key] = [...(base[key] ?? []), ...value]; // appended
    else if (value && typeof value === 'object' && !Array.isArray(value)) merged[key] = { ...(merged[key] ?? {}), ...value }; // mappings merged
    else merged[key] = value;
  }
  return merged;
}

/** The Dockerfile's stages: name (or `final`) → its FROM image and instructions. */
function dockerStages(): Map<string, { from: string; lines: string[] }> {
  const stages = new Map<string, { from: string; lines: string[] }>();
  let current: { from: string; lines: string[] } | null = null;
  const text = read('Dockerfile').replace(/\\\n\s*/g, ' ');
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) {
      current = { from: from[1], lines: [] };
      stages.set(from[2] ?? 'final', current);
    } else current?.lines.push(line);
  }
  return stages;
}

const scripts: Record<string, string> = JSON.parse(read('package.json')).scripts;

describe('docker-compose.yml (docker compose up --build)', () => {
  const file = compose('docker-compose.yml');
  const services: Json = file.services;

  it('runs PostgreSQL, the API, its mail worker, Adminer, Mailpit (and Redis)', () => {
    expect(Object.keys(services).sort()).toEqual(['adminer', 'api', 'mailpit', 'postgres', 'redis', 'worker']);
  });

  it('publishes the API on 8080, Adminer on 8081 and Mailpit\'s web UI on 8025; not PostgreSQL', () => {
    expect(services.api.ports).toContain('8080:8080');
    expect(services.adminer.ports).toContain('8081:8080');
    expect(services.mailpit.ports).toContain('8025:8025');
    expect(services.postgres.ports).toBeUndefined();
  });

  it('builds the production image and sends mail to Mailpit, on the Compose database', () => {
    expect(services.api.build).toBe('.');
    expect(services.api.environment).toMatchObject({
      NODE_ENV: 'production',
      PORT: '8080',
      SMTP_URL: 'smtp://mailpit:1025',
      DB_HOST: 'postgres',
      DB_USERNAME: services.postgres.environment.POSTGRES_USER,
      DB_PASSWORD: services.postgres.environment.POSTGRES_PASSWORD,
      DB_NAME: services.postgres.environment.POSTGRES_DB,
    });
    expect(services.adminer.environment.ADMINER_DEFAULT_SERVER).toBe('postgres');
  });

  it('sends the mail from a worker process (npm run start:worker\'s command): the API only queues it', () => {
    expect(services.api.environment.MAIL_WORKER).toBe('off');
    expect(services.worker.build).toBe('.');
    // npm's script `exec`s the same command, so that npm's signals reach it.
    expect(`exec ${services.worker.command.join(' ')}`).toBe(scripts['start:worker']);
    expect(scripts['start:worker']).toBe('exec node --max-semi-space-size=8 --heap-growing-percent=20 dist/mail-worker.js');
    // The API's database, the APP_SECRET that sealed the codes, and its mail settings.
    const shared = ['NODE_ENV', 'DB_HOST', 'DB_PORT', 'DB_USERNAME', 'DB_PASSWORD', 'DB_NAME', 'APP_SECRET', 'SMTP_URL', 'MAIL_FROM'];
    for (const name of shared) expect([name, services.worker.environment[name]]).toEqual([name, services.api.environment[name]]);
    expect(services.worker.environment.MAIL_WORKER).toBeUndefined();
    expect(services.worker.ports).toBeUndefined();
    expect(services.worker.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' }, mailpit: expect.any(Object) });
  });
});

describe('docker-compose.dev.yml (development mode with hot reload)', () => {
  const base: Json = compose('docker-compose.yml').services;
  const override: Json = compose('docker-compose.dev.yml').services;
  const api = mergeService(base.api, override.api);

  it('changes only the API service', () => {
    expect(Object.keys(override)).toEqual(['api']);
  });

  it('builds the Dockerfile\'s dev stage and runs npm run start:dev (nest start --watch)', () => {
    expect(api.build).toEqual({ context: '.', target: 'dev' });
    expect(api.command).toEqual(['npm', 'run', 'start:dev']);
    expect(scripts['start:dev']).toBe('nest start --watch');
  });

  it('mounts src/ where the image keeps the sources, and runs in development on every address of the container', () => {
    expect(api.volumes).toEqual(['./src:/app/src:ro']);
    expect(api.environment).toMatchObject({ NODE_ENV: 'development', HOST: '::', PORT: '8080' });
  });

  it('keeps the database, Mailpit and the published port of the base file', () => {
    expect(api.environment).toMatchObject({ SMTP_URL: 'smtp://mailpit:1025', DB_HOST: 'postgres' });
    expect(api.ports).toEqual(['8080:8080']);
    expect(api.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' }, mailpit: expect.any(Object) });
    expect(api.healthcheck.test).toEqual(base.api.healthcheck.test);
  });
});

describe('Dockerfile', () => {
  const stages = dockerStages();

  it('is built on Node.js 24 (node:24-bookworm-slim) in every stage that does not build on another', () => {
    const images = [...stages.values()].map((stage) => stage.from).filter((from) => !stages.has(from));
    expect(images.length).toBeGreaterThan(0);
    expect(new Set(images)).toEqual(new Set(['node:24-bookworm-slim']));
  });

  it('has a dev stage with every dependency and the sources where Compose mounts them, running npm run start:dev', () => {
    const dev = stages.get('dev')!;
    expect(dev).toBeDefined();
    expect(stages.get(dev.from)?.lines).toContain('RUN npm ci');
    expect(dev.lines).toEqual(expect.arrayContaining(['COPY src ./src', 'CMD ["npm", "run", "start:dev"]']));
    expect(stages.get(dev.from)?.lines).toContain('WORKDIR /app');
    expect(dev.lines).toContain('ENV NODE_ENV=development PORT=8080 HOST=::');
  });

  it('ends with the production stage: listens on every address, runs the start:prod command', () => {
    const final = stages.get('final')!;
    expect(final.lines).toContain('ENV NODE_ENV=production PORT=8080 HOST=::');
    const cmd = JSON.parse(final.lines.find((line) => line.startsWith('CMD '))!.slice(4)) as string[];
    // The same command as `npm run start:prod`, which `exec`s it so that npm's signals reach it.
    expect(`exec ${cmd.join(' ')}`).toBe(scripts['start:prod']);
  });

  it('the README gives the development-mode command', () => {
    expect(read('README.md')).toContain('docker compose -f docker-compose.yml -f docker-compose.dev.yml up --build');
  });
});
