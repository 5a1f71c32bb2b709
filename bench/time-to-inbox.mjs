// Time to inbox: logins started at a steady, open-loop rate, and for each one the time from its
// 201 to the SMTP sink receiving its mail. Used by bench/run.mjs; see README "Performance".

/**
 * Starts `rate` logins per second for `seconds` (open loop: each request leaves at its scheduled
 * time whatever the answers before it do), each for a new address, then waits up to `settleMs` for
 * their mails.
 * @param options.base the service's URL
 * @param options.receivedAt asks the SMTP sink when each address got its mail (ms since the epoch,
 *   or null when none came)
 * @param options.backlog the number of mails still waiting to be sent (outbox and queue)
 * @returns latencies in ms (p50, p99, max of 201 → mail received), logins answered 201, mails not
 *   delivered within `settleMs`, and the backlog when the last login was answered
 */
export async function measureTimeToInbox({ base, rate, seconds, settleMs, tag, receivedAt, backlog }) {
  const total = Math.round(rate * seconds);
  const answers = []; // { email, answeredAt, status }
  const started = performance.now();
  const inFlight = [];
  for (let i = 0; i < total; i += 1) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const email = `inbox-${tag}-${rate}-${i}@bench.example`;
    inFlight.push(
      fetch(`${base}/sessions?mode=email`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: { email }, device: { type: 'othr' } }),
      })
        .then(async (response) => {
          await response.arrayBuffer();
          answers.push({ email, answeredAt: Date.now(), status: response.status });
        })
        .catch(() => answers.push({ email, answeredAt: Date.now(), status: 0 })),
    );
  }
  await Promise.all(inFlight);
  const sendSeconds = (performance.now() - started) / 1000;
  const backlogAtEnd = await backlog();
  const created = answers.filter((a) => a.status === 201);

  const deadline = Date.now() + settleMs;
  let times = await receivedAt(created.map((a) => a.email));
  while (times.some((t) => t === null) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    times = await receivedAt(created.map((a) => a.email));
  }
  const latencies = created.flatMap((a, i) => (times[i] === null ? [] : [Math.max(0, times[i] - a.answeredAt)])).sort((x, y) => x - y);
  const at = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] : null);
  return {
    ratePerSecond: rate,
    seconds,
    achievedRatePerSecond: Math.round((answers.length / sendSeconds) * 10) / 10,
    logins: total,
    created: created.length,
    otherStatuses: answers.length - created.length,
    delivered: latencies.length,
    notDelivered: created.length - latencies.length,
    backlogWhenLastAnswered: backlogAtEnd,
    timeToInboxMs: { p50: at(0.5), p99: at(0.99), max: latencies.at(-1) ?? null },
  };
}
