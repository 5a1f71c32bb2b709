import request from 'supertest';
import { SAMPLE_MS } from '../src/mail/send-gate.js';
import { keepLoopBusy } from './support/busy-loop.js';
import { othr, startLogin } from './support/factories.js';
import { metricValue } from './support/observability.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * The service's own mail worker while requests keep its event loop busy (SendGate): one send at a
 * time, and a mail that waited is read again before it goes out. The app runs in this process, so
 * keepLoopBusy() is the burst.
 */
describe('mail held back while requests keep the service busy', () => {
  let t: TestApp;
  let idle: (() => void) | null = null;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterEach(() => {
    idle?.();
    idle = null;
    t.smtp.delayMs = 0;
  });
  afterAll(() => t?.close());

  const counter = async (name: string) => (await metricValue(t.http, name)) ?? 0;
  const received = (to: string) => t.smtp.messages.filter((m) => m.to === to).length;

  /** Busy loop, and a first login whose mail takes the one send slot (the sink answers it slowly). */
  async function busyWithOneSendInFlight(to: string): Promise<void> {
    idle = keepLoopBusy();
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS * 3));
    t.smtp.delayMs = 4_000;
    await startLogin(t, othr(to)).expect(201);
    await expect.poll(() => t.smtp.pending, { timeout: 10_000, interval: 50 }).toBe(1);
  }

  it('sends a held mail whose session is still pending, and not one whose session was revoked while it waited', async () => {
    const sentBefore = await counter('mails_sent_total');
    await busyWithOneSendInFlight('slot1@example.com');
    const kept = (await startLogin(t, othr('held-kept@example.com')).expect(201)).body;
    const revoked = (await startLogin(t, othr('held-revoked@example.com')).expect(201)).body;
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // its mail read, queued and waiting for the slot
    await request(t.http).delete(`/sessions/${revoked.uuid}`).set('Authorization', `Bearer ${revoked.token}`).expect(204);
    // Only the first is being sent; the other two wait for its slot.
    expect([t.smtp.pending, received('held-kept@example.com'), received('held-revoked@example.com')]).toEqual([1, 0, 0]);

    idle?.();
    idle = null;
    await expect.poll(() => received('held-kept@example.com'), { timeout: 10_000, interval: 50 }).toBe(1);
    await expect.poll(() => counter('mails_sent_total'), { timeout: 5_000, interval: 100 }).toBe(sentBefore + 2);
    expect(received('slot1@example.com')).toBe(1);
    expect(received('held-revoked@example.com')).toBe(0);
    expect(kept.status).toBe('pending');
  }, 40_000);

  it('drops a held mail whose code expired while it waited, counted once as failed', async () => {
    const failedBefore = await counter('mails_failed_total');
    await busyWithOneSendInFlight('slot2@example.com');
    await startLogin(t, othr('held-expired@example.com')).expect(201);
    await new Promise((resolve) => setTimeout(resolve, 1_500)); // its mail read, queued and waiting for the slot
    expect([t.smtp.pending, received('held-expired@example.com')]).toEqual([1, 0]);
    t.clock.advance(301); // past OTP_TTL (300 s)

    idle?.();
    idle = null;
    await expect.poll(() => received('slot2@example.com'), { timeout: 10_000, interval: 50 }).toBe(1);
    await expect.poll(() => counter('mails_failed_total'), { timeout: 10_000, interval: 100 }).toBe(failedBefore + 1);
    expect(received('held-expired@example.com')).toBe(0);
  }, 40_000);
});
