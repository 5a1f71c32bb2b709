import { RepeatedWarning } from './repeated-warning.js';

describe('RepeatedWarning', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('writes the first occurrence at once, and at the end of the interval the latest held back with the number of the others', () => {
    const lines: string[] = [];
    const warning = new RepeatedWarning((line) => lines.push(line), 10_000);
    warning.report('lost a connection: A');
    warning.report('lost a connection: B');
    vi.advanceTimersByTime(9_999);
    warning.report('lost a connection: C');
    expect(lines).toEqual(['lost a connection: A']);
    vi.advanceTimersByTime(1);
    expect(lines).toEqual(['lost a connection: A', 'lost a connection: C (1 more like it in the last 10 s)']);
    // That line starts the next interval.
    warning.report('lost a connection: D');
    vi.advanceTimersByTime(10_000);
    expect(lines.at(-1)).toBe('lost a connection: D');
    vi.advanceTimersByTime(60_000);
    warning.report('lost a connection: E');
    expect(lines).toEqual([
      'lost a connection: A',
      'lost a connection: C (1 more like it in the last 10 s)',
      'lost a connection: D',
      'lost a connection: E',
    ]);
  });

  it('writes nothing more when nothing was held back', () => {
    const lines: string[] = [];
    const warning = new RepeatedWarning((line) => lines.push(line), 10_000);
    warning.report('one');
    vi.advanceTimersByTime(60_000);
    expect(lines).toEqual(['one']);
  });
});
