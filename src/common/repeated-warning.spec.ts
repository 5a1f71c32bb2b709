import { RepeatedWarning } from './repeated-warning.js';

describe('RepeatedWarning', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('writes the first occurrence at once, counts the ones within the interval, and names the count in the next line', () => {
    const lines: string[] = [];
    const warning = new RepeatedWarning((line) => lines.push(line), 10_000);
    warning.report('lost a connection: A');
    warning.report('lost a connection: B');
    vi.advanceTimersByTime(9_999);
    warning.report('lost a connection: C');
    expect(lines).toEqual(['lost a connection: A']);
    vi.advanceTimersByTime(1);
    warning.report('lost a connection: D');
    expect(lines).toEqual(['lost a connection: A', 'lost a connection: D (2 more like it in the last 10 s)']);
    vi.advanceTimersByTime(60_000);
    warning.report('lost a connection: E');
    expect(lines.at(-1)).toBe('lost a connection: E');
  });
});
