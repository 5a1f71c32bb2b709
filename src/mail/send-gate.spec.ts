import { setTimeout as sleep } from 'node:timers/promises';
import { keepLoopBusy } from '../../test/support/busy-loop.js';
import { SAMPLE_MS, SendGate } from './send-gate.js';

/** Enters `count` sends at once; `started` lists them in the order they were let in, `held` those that waited. */
function enterAll(gate: SendGate, count: number) {
  const started: number[] = [];
  const held: number[] = [];
  const leaves = Array.from({ length: count }, (_, i) =>
    gate.enter().then((pass) => {
      started.push(i);
      if (pass.held) held.push(i);
      return pass.leave;
    }),
  );
  return { started, held, leaves };
}

describe('SendGate', () => {
  let gate: SendGate;
  let idle: (() => void) | null = null;
  beforeEach(() => {
    gate = new SendGate();
    gate.start();
  });
  afterEach(() => {
    idle?.();
    idle = null;
    gate.stop();
  });

  it('lets every send start at once while the event loop has room', async () => {
    await sleep(SAMPLE_MS * 2);
    const { started, held, leaves } = enterAll(gate, 5);
    await Promise.all(leaves);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(held).toEqual([]);
  });

  it('while the loop is busy, starts one send at a time in the order they asked, and all the waiting ones when it has room again', async () => {
    idle = keepLoopBusy();
    await sleep(SAMPLE_MS * 3);
    const { started, held, leaves } = enterAll(gate, 4);
    const first = await leaves[0];
    await sleep(SAMPLE_MS);
    expect(started).toEqual([0]);

    first();
    const second = await leaves[1];
    await sleep(SAMPLE_MS);
    expect(started).toEqual([0, 1]);

    idle();
    idle = null;
    await Promise.all(leaves.slice(2));
    expect(started).toEqual([0, 1, 2, 3]);
    expect(held).toEqual([1, 2, 3]); // the first went at once, with the slot
    // The send let through while busy ends later: nothing is left waiting for it.
    second();
    const { started: after, leaves: more } = enterAll(gate, 3);
    await Promise.all(more);
    expect(after).toEqual([0, 1, 2]);
  });

  it('lets every waiting send start when stopped (a shutdown sends what it holds)', async () => {
    idle = keepLoopBusy();
    await sleep(SAMPLE_MS * 3);
    const { started, held, leaves } = enterAll(gate, 3);
    await leaves[0];
    await sleep(SAMPLE_MS);
    expect(started).toEqual([0]);
    gate.stop();
    await Promise.all(leaves);
    expect(started).toEqual([0, 1, 2]);
    expect(held).toEqual([1, 2]);
  });
});
