import { OtpMailRelay } from '../src/mail/otp-mail.relay.js';
import { OtpMailWorker } from '../src/mail/otp-mail.worker.js';
import { othr, startLogin } from './support/factories.js';
import { LogCapture, metricValue } from './support/observability.js';
import { createTestApp, type TestApp } from './support/test-app.js';

// Its own file: the log lines of the one app a file starts reach its LogCapture (Nest's logger is
// process-wide, and later apps of a file would not).
describe('mail retry warnings during an SMTP outage', () => {
  const logs = new LogCapture();
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ LOG_LEVEL: 'warn' }, { logStream: logs });
  });
  afterAll(() => t?.close());

  it('writes one warning per 10 s, not one per mail and attempt (every failure counted in the metrics)', async () => {
    const relay = t.app.get(OtpMailRelay);
    await relay.stop(); // the three mails go out as one job, handed over below
    await t.smtp.stop();
    const sessions: string[] = [];
    for (const to of ['retry1@example.com', 'retry2@example.com', 'retry3@example.com']) {
      sessions.push((await startLogin(t, othr(to)).expect(201)).body.uuid);
    }
    expect(await relay.relayBatch(10)).toEqual({ handed: 3, jobs: 1 });

    // Each mail fails at the first attempt and again at the retry (graphile-worker: e^1 s later).
    const sendErrors = async () => (await metricValue(t.http, 'mail_send_errors_total')) ?? 0;
    await expect.poll(sendErrors, { timeout: 15_000, interval: 200 }).toBeGreaterThanOrEqual(6);
    const warnings = logs.raw.filter((line) => line.includes('failed, will retry'));
    expect(warnings).toHaveLength(1);
    expect(sessions.filter((id) => warnings[0].includes(`Mail for session ${id} failed, will retry`))).toHaveLength(1);

    // At the end of each 10 s, even if nothing fails any more: the latest, counting the others.
    // (On a slow machine the failures can spread over more than one interval: more lines.)
    await t.app.get(OtpMailWorker).stop();
    const errors = await sendErrors();
    const written = () => logs.raw.filter((line) => line.includes('failed, will retry'));
    const accounted = () =>
      written().reduce((sum, line) => sum + 1 + Number(/\((\d+) more like it in the last 10 s\)/.exec(line)?.[1] ?? 0), 0);
    await expect.poll(accounted, { timeout: 12_000, interval: 200 }).toBe(errors); // every failure written or counted, none lost
    expect(written().length).toBeLessThan(errors);
    expect(written().some((line) => / more like it in the last 10 s\)/.test(line))).toBe(true);
  }, 40_000);
});
