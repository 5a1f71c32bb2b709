/** Helpers to read what the service tells operators: its log lines and its Prometheus metrics. */
import type { App } from 'supertest/types.js';
import request from 'supertest';

/** A pino destination that keeps every line it receives (raw and parsed). */
export class LogCapture {
  readonly raw: string[] = [];
  readonly entries: Record<string, any>[] = [];

  write(chunk: string): void {
    for (const line of chunk.split('\n')) {
      if (!line.trim()) continue;
      this.raw.push(line);
      try {
        this.entries.push(JSON.parse(line));
      } catch {
        this.entries.push({ unparsable: line });
      }
    }
  }

  /** The access-log lines pino-http wrote when responses finished (they carry `responseTime`). */
  requestLines(requestId?: string): Record<string, any>[] {
    return this.entries.filter((e) => e.responseTime !== undefined && (requestId === undefined || e.req?.id === requestId));
  }

  /** Every line that mentions the request id anywhere (access line, or app logs bound to the request). */
  linesMentioning(text: string): string[] {
    return this.raw.filter((line) => line.includes(text));
  }

  /** Waits (up to 2 s) until `count` access lines exist for the request id: the line is written on 'finish'. */
  async waitForRequestLines(requestId: string, count = 1): Promise<Record<string, any>[]> {
    const deadline = Date.now() + 2_000;
    while (this.requestLines(requestId).length < count && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return this.requestLines(requestId);
  }
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format into samples (comments skipped). */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!match) throw new Error(`Not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = match[3];
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

/** The samples of `name` whose labels include all of `labels`. */
export function samplesOf(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` with exactly `labels`; undefined when there is none. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`Several samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** The sum of every sample of `name` (0 for a labelled counter that has no series yet). */
export function sumOf(samples: Sample[], name: string): number {
  return samplesOf(samples, name).reduce((sum, s) => sum + s.value, 0);
}

/** One sample's value as GET /metrics of `http` answers it now (undefined when it has no such sample). */
export async function metricValue(http: App, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  return sampleValue(parsePrometheus((await request(http).get('/metrics').expect(200)).text), name, labels);
}
