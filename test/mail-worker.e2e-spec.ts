import { othr, uniqueEmail } from './support/factories.js';
import { copyServerBuild, expectShuttingDown, spawnServer, startServer, type ServerBuild, type ServerProcess } from './support/server-process.js';
import { SmtpSink } from './support/smtp-sink.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { testServerEnv } from './support/test-app.js';

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

async function until<T>(probe: () => Promise<T> | T, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(100);
  }
}

/** One sample of a Prometheus text exposition (no labels), or null when the metric is absent. */
function sample(text: string, name: string): number | null {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : null;
}

/**
 * The mail worker as its own process (issue #15): a service replica with MAIL_WORKER=off only queues
 * the login mails; `node dist/mail-worker.js` sends them. Real processes, real PostgreSQL (a fresh
 * database, migrated by the processes as on a first start), a real SMTP server, real HTTP.
 */
describe('mail worker process (node dist/mail-worker.js) beside a service with MAIL_WORKER=off', () => {
  let build: ServerBuild;
  let smtp: SmtpSink;
  let db: TestDatabase;
  const processes: ServerProcess[] = [];

  beforeAll(async () => {
    build = await copyServerBuild();
    smtp = await SmtpSink.start();
  }, 180_000);

  beforeEach(async () => {
    db = await createTestDatabase();
  });

  afterEach(async () => {
    smtp.delayMs = 0;
    for (const proc of processes.splice(0)) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        proc.child.kill('SIGKILL');
        await proc.exited;
      }
    }
    await db.drop();
  }, 60_000);

  afterAll(async () => {
    await smtp?.stop();
    await build?.remove();
  }, 60_000);

  // One environment for both processes: the worker process sends whatever MAIL_WORKER says.
  const env = (): Record<string, string> => testServerEnv(db, smtp, { SHUTDOWN_GRACE_PERIOD: '20', MAIL_WORKER: 'off' });

  async function startService(): Promise<ServerProcess> {
    const service = await startServer(build, env());
    processes.push(service);
    return service;
  }

  async function startWorker(): Promise<ServerProcess> {
    const worker = await startServer(build, env(), build.workerJs);
    processes.push(worker);
    return worker;
  }

  const postLogin = (baseUrl: string, email: string) =>
    fetch(`${baseUrl}/sessions?mode=email`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(othr(email)),
    }).then(async (res) => ({ status: res.status, body: (await res.json()) as { uuid: string; token: string; status: string } }));

  /** PATCH /sessions/{uuid} with the session's own token and `code`. */
  const confirm = (baseUrl: string, session: { uuid: string; token: string }, code: string) =>
    fetch(`${baseUrl}/sessions/${session.uuid}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${session.token}` },
      body: JSON.stringify({ otp_code: code }),
    }).then(async (res) => ({ status: res.status, sessionStatus: ((await res.json()) as { status: string }).status }));

  /** A login whose mail the SMTP server has received but does not answer (for a minute): a send in progress. */
  const loginWithHeldSend = async (baseUrl: string, tag: string) => {
    smtp.delayMs = 60_000;
    const email = uniqueEmail(tag);
    const started = await postLogin(baseUrl, email);
    expect(started.status).toBe(201);
    // Its own message (smtp.pending also counts messages earlier tests left held).
    expect(await until(() => smtp.countTo(email), (n) => n === 1, 5_000)).toBe(1);
    return { email, started };
  };

  const outbox = () =>
    db.query<{ to: string; handed_over: boolean }>(`SELECT payload->>'to' AS "to", handed_over_at IS NOT NULL AS handed_over FROM mail_outbox`);

  const metrics = async (baseUrl: string) => {
    const res = await fetch(`${baseUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    return res.text();
  };

  it('the service alone queues the mail and sends nothing; a worker process then delivers it, and its code confirms the session', async () => {
    const service = await startService();
    const announced = (server: ServerProcess, line: string) => until(() => server.output(), (output) => output.includes(line), 5_000);
    expect(await announced(service, 'MAIL_WORKER=off: this process queues the login mails')).toContain(
      'MAIL_WORKER=off: this process queues the login mails; mail worker processes (dist/mail-worker.js) send them',
    );
    const email = uniqueEmail('worker');
    const started = await postLogin(service.baseUrl, email);
    expect(started.status).toBe(201);

    // The service's relay hands the row to the job queue (graphile-worker's schema, installed by the
    // service on this fresh database) 5 ms after the commit; no one sends it.
    expect(await until(outbox, (rows) => rows[0]?.handed_over === true, 5_000)).toEqual([{ to: email, handed_over: true }]);
    await sleep(1_500);
    expect(smtp.countTo(email)).toBe(0);
    expect(await outbox()).toEqual([{ to: email, handed_over: true }]);
    const queued = await metrics(service.baseUrl);
    expect(sample(queued, 'mail_queue_depth')).toBe(1);
    expect(sample(queued, 'mails_sent_total')).toBe(0);
    expect(sample(queued, 'sessions_created_total')).toBeNull(); // labelled: sessions_created_total{device_type="othr"}
    expect(queued).toContain('sessions_created_total{device_type="othr"} 1');

    const worker = await startWorker();
    expect(await announced(worker, 'Mail worker sending')).toContain(
      `Mail worker sending (MAIL_CONCURRENCY=20, SMTP); GET /metrics, /health/live and /health/ready on http://localhost:${worker.port} (every address, NODE_ENV=test)`,
    );
    expect(await confirm(service.baseUrl, started.body, await smtp.codeFor(email))).toEqual({ status: 200, sessionStatus: 'confirmed' });
    expect(smtp.countTo(email)).toBe(1);
    expect(await until(outbox, (rows) => rows.length === 0, 5_000)).toEqual([]);
    expect(worker.output()).toMatch(new RegExp(`"msg":"Mail for session ${started.body.uuid} sent in \\d+ ms \\(attempt 1\\)"`));

    // The mail counters live where the sending happens: the worker process's GET /metrics.
    const sent = await metrics(worker.baseUrl);
    expect(sample(sent, 'mails_sent_total')).toBe(1);
    expect(sample(sent, 'mails_failed_total')).toBe(0);
    expect(sample(sent, 'mail_send_errors_total')).toBe(0);
    expect(sample(sent, 'mail_queue_depth')).toBe(0);
    expect(sent).toContain('process_cpu_seconds_total');
    expect(sample(await metrics(service.baseUrl), 'mails_sent_total')).toBe(0);

    const live = await fetch(`${worker.baseUrl}/health/live`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${worker.baseUrl}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ok', info: { database: { status: 'up' } }, error: {} }); // and the ping's responseTime
    const other = await fetch(`${worker.baseUrl}/sessions`);
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({
      error: 'not_found',
      message: 'The mail worker serves GET /health/live, GET /health/ready and GET /metrics only.',
    });
    expect((await fetch(`${worker.baseUrl}/metrics`, { method: 'POST' })).status).toBe(405);
  }, 60_000);

  it('a login while the worker runs is delivered at once (the service\'s relay, woken by the commit)', async () => {
    const service = await startService();
    await startWorker();
    const emails = Array.from({ length: 5 }, () => uniqueEmail('prompt'));
    const started = Date.now();
    const answers = await Promise.all(emails.map((email) => postLogin(service.baseUrl, email)));
    expect(answers.map((a) => a.status)).toEqual(emails.map(() => 201));
    for (const email of emails) expect(await smtp.codeFor(email)).toMatch(/^\d{6}$/);
    // About 100 ms on an idle machine; the bound leaves room for a CI machine running other test
    // files at once (1.1 s seen), and still fails a relay that waits for its 1 s poll more than once.
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await until(outbox, (rows) => rows.length === 0, 5_000)).toEqual([]);
  }, 60_000);

  it('a worker whose database connections are all cut logs one line, reconnects by itself, and delivers the next login\'s mail', async () => {
    const service = await startService();
    const worker = await startWorker();
    const [{ cut }] = await db.query<{ cut: number }>(
      'SELECT count(pg_terminate_backend(pid))::int AS cut FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    expect(cut).toBeGreaterThan(2); // the service's and the worker's pools, the worker's LISTEN connection
    const lostLines = () => worker.output().split('\n').filter((line) => line.includes('lost a database connection'));
    expect(await until(lostLines, (lines) => lines.length > 0, 5_000)).toEqual([
      expect.stringMatching(/Mail worker: lost a database connection: (terminating connection due to administrator command|Connection terminated unexpectedly)/),
    ]);
    expect(worker.output()).not.toContain('UNLISTEN');

    const email = uniqueEmail('reconnect');
    const started = await until(() => postLogin(service.baseUrl, email), (answer) => answer.status === 201, 10_000);
    expect(started.status).toBe(201);
    expect(await confirm(service.baseUrl, started.body, await smtp.codeFor(email, 15_000))).toEqual({ status: 200, sessionStatus: 'confirmed' });
    // The others' errors are held back and written as one line at the end of the first one's 10 s.
    const lines = lostLines();
    expect(lines.length).toBeLessThanOrEqual(2);
    if (lines.length === 2) expect(lines[1]).toContain('Mail worker: lost a database connection: ');
  }, 60_000);

  it('a worker with another APP_SECRET keeps the mail queued and names APP_SECRET; a worker with the right one then delivers it', async () => {
    const service = await startService();
    const wrong = await startServer(build, { ...env(), APP_SECRET: 'another-secret-of-at-least-32-characters!!' }, build.workerJs);
    processes.push(wrong);
    const email = uniqueEmail('secret');
    const started = await postLogin(service.baseUrl, email);
    expect(started.status).toBe(201);

    const line = `Mail for session ${started.body.uuid} not sent, will retry until its code expires: its sealed code does not open with this process's APP_SECRET. Every service replica and mail worker needs the same APP_SECRET`;
    expect(await until(() => wrong.output(), (output) => output.includes(line), 5_000)).toContain(line);
    expect(smtp.countTo(email)).toBe(0);
    expect(await outbox()).toEqual([{ to: email, handed_over: true }]);
    const failed = await metrics(wrong.baseUrl);
    expect(sample(failed, 'mail_send_errors_total')).toBe(1);
    expect(sample(failed, 'mails_failed_total')).toBe(0);
    expect(sample(failed, 'mail_queue_depth')).toBe(1);
    wrong.child.kill('SIGTERM');
    expect(await wrong.exited).toEqual({ code: 0, signal: null });

    // graphile-worker retries the job after its backoff (about 3 s after the first attempt).
    await startWorker();
    expect(await confirm(service.baseUrl, started.body, await smtp.codeFor(email, 15_000))).toEqual({ status: 200, sessionStatus: 'confirmed' });
    expect(smtp.countTo(email)).toBe(1);
    expect(await until(outbox, (rows) => rows.length === 0, 5_000)).toEqual([]);
  }, 60_000);

  it('SIGTERM (and a repeated SIGINT) on the worker lets the send in progress finish, settles it, and exits 0', async () => {
    const service = await startService();
    const worker = await startWorker();
    smtp.delayMs = 2_000; // the SMTP server holds its answer to the message: the send stays in progress
    const email = uniqueEmail('drain');
    expect((await postLogin(service.baseUrl, email)).status).toBe(201);
    expect(await until(() => smtp.pending, (n) => n === 1, 5_000)).toBe(1);

    const signalledAt = Date.now();
    worker.child.kill('SIGTERM');
    await sleep(200);
    // Draining: still serving HTTP, no longer ready.
    await expectShuttingDown(worker.baseUrl, 'The mail worker');
    worker.child.kill('SIGINT');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    // It waited for the SMTP server's answer, then deleted the settled mail's outbox row.
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(1_000);
    expect(smtp.pending).toBe(0);
    expect(smtp.countTo(email)).toBe(1);
    expect(await outbox()).toEqual([]);
    expect(worker.output()).toContain('SIGTERM: shutting down (sends in progress finish; grace period 20 s)');
    expect(worker.output()).toContain('Shutdown complete: exit 0');
    expect(worker.output()).toContain('SIGINT: already shutting down');
    expect(worker.output()).not.toContain('Grace period over');
    // The service goes on serving, queuing mail for the next worker.
    expect((await fetch(`${service.baseUrl}/health/ready`)).status).toBe(200);
    // Its own shutdown names what it ran: the relay, no mail worker.
    service.child.kill('SIGTERM');
    expect(await service.exited).toEqual({ code: 0, signal: null });
    expect(service.output()).toMatch(/Closed in \d+ ms: no request open, mail relay stopped, database connections closed/);
  }, 60_000);

  it('SIGTERM on a worker with a backlog leaves no job locked: the jobs it had not started go to the next worker at once', async () => {
    const service = await startService();
    const worker = await startServer(build, { ...env(), MAIL_CONCURRENCY: '2' }, build.workerJs);
    processes.push(worker);
    smtp.delayMs = 1_500; // two sends in progress, the rest of the backlog waiting
    const emails = Array.from({ length: 12 }, () => uniqueEmail('backlog'));
    const answers = await Promise.all(emails.map((email) => postLogin(service.baseUrl, email)));
    expect(answers.map((a) => a.status)).toEqual(emails.map(() => 201));
    expect(await until(() => smtp.pending, (n) => n >= 2, 5_000)).toBeGreaterThanOrEqual(2);

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    smtp.delayMs = 0;
    await startWorker();
    // Well before graphile-worker's 4-hour lock would expire: every mail, each once.
    const delivered = () => emails.filter((email) => smtp.countTo(email) === 1).length;
    expect(await until(delivered, (n) => n === emails.length, 15_000)).toBe(emails.length);
    expect(emails.map((email) => smtp.countTo(email))).toEqual(emails.map(() => 1));
    expect(await until(outbox, (rows) => rows.length === 0, 5_000)).toEqual([]);
  }, 60_000);

  it('past SHUTDOWN_GRACE_PERIOD the worker hands the sends in progress back and exits 1; the next worker sends them within seconds', async () => {
    const service = await startService();
    const worker = await startServer(build, { ...env(), SHUTDOWN_GRACE_PERIOD: '1' }, build.workerJs);
    processes.push(worker);
    const held = [await loginWithHeldSend(service.baseUrl, 'cut'), await loginWithHeldSend(service.baseUrl, 'cut'), await loginWithHeldSend(service.baseUrl, 'cut')];

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 1, signal: null });
    expect(worker.output()).toContain('Grace period over: exiting with sends still in progress');
    expect(worker.output()).toContain('3 send(s) still in progress handed back to the queue, for a running mail worker to retry');
    expect(await outbox()).toHaveLength(3);

    // Not locked by the dead worker (graphile-worker's lock would last 4 hours): sent again at once.
    smtp.delayMs = 0;
    await startWorker();
    for (const { email, started } of held) {
      expect(await until(() => smtp.countTo(email), (n) => n === 2, 15_000)).toBe(2); // the cut send's message arrived too: at least once
      expect(await confirm(service.baseUrl, started.body, await smtp.codeFor(email))).toEqual({ status: 200, sessionStatus: 'confirmed' });
    }
    expect(await until(outbox, (rows) => rows.length === 0, 5_000)).toEqual([]);
  }, 60_000);

  it('the service (MAIL_WORKER=inline) also hands its send in progress back past SHUTDOWN_GRACE_PERIOD; a worker process then sends it', async () => {
    const service = await startServer(build, { ...env(), MAIL_WORKER: 'inline', SHUTDOWN_GRACE_PERIOD: '1' });
    processes.push(service);
    const { email, started } = await loginWithHeldSend(service.baseUrl, 'cut-inline');

    service.child.kill('SIGTERM');
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.output()).toContain('Grace period over: exiting with requests or mail sends still in progress');
    expect(service.output()).toContain('1 send(s) still in progress handed back to the queue, for a running mail worker to retry');

    smtp.delayMs = 0;
    await startWorker();
    expect(await until(() => smtp.countTo(email), (n) => n === 2, 15_000)).toBe(2);
    expect(await until(outbox, (rows) => rows.length === 0, 5_000)).toEqual([]);
  }, 60_000);

  it('refuses to start on the embedded PostgreSQL (no DATABASE_URL or DB_HOST): one line, exit 1', async () => {
    const { DATABASE_URL: _unused, ...withoutDatabase } = env();
    const worker = await spawnServer(build, { ...withoutDatabase, EMBEDDED_DB_DIR: `${build.dir}/.data/pg` }, build.workerJs);
    processes.push(worker);
    expect(await worker.exited).toEqual({ code: 1, signal: null });
    expect(worker.output().trim()).toBe(
      'Invalid configuration:\n  DATABASE_URL (or DB_HOST) is required by the mail worker: it sends the mail queued in the service\'s database ' +
        '(the embedded PostgreSQL of `npm start` is postgres://postgres:postgres@127.0.0.1:54329/postgres)',
    );
  });
});
