import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestApp } from './test-app.js';

/** A request sent byte for byte: any method, raw path (latin1), raw header values, raw body. */
export interface RawRequest {
  method: string;
  /** Path and query exactly as sent (characters U+0021..U+00FF, sent as latin1 bytes). */
  path: string;
  headers: Record<string, string>;
  /** Omitted: no body. A Buffer: sent with Content-Length, or in `chunks` pieces with Transfer-Encoding: chunked. */
  body?: Buffer;
  /** Send the body chunked in this many pieces (no Content-Length). */
  chunks?: number;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The response body as UTF-8 text. */
  text: string;
}

/** The app's HTTP server, listening on a loopback port (started on first use). */
export async function listeningPort(t: TestApp): Promise<number> {
  const server: Server = t.app.getHttpServer();
  if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/**
 * Sends one request on a new connection and reads the whole answer (10 s at most). A connection
 * the server closes without answering (what Node's HTTP parser does to some malformed requests
 * after writing its own 400) resolves as status 0 only when no status line came at all.
 */
export async function sendRaw(t: TestApp, req: RawRequest): Promise<RawResponse> {
  const port = await listeningPort(t);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body !== undefined) {
      if (req.chunks && req.chunks > 1) headers['Transfer-Encoding'] = 'chunked';
      else headers['Content-Length'] = req.body.length;
    }
    const call = httpRequest(
      { host: '127.0.0.1', port, method: req.method, path: req.path, headers, agent: false, timeout: 10_000, insecureHTTPParser: true },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (chunk: Buffer) => parts.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
        res.on('error', reject);
      },
    );
    call.on('timeout', () => call.destroy(new Error(`No answer within 10 s to ${req.method} ${req.path}`)));
    call.on('error', (error: NodeJS.ErrnoException) => {
      // The server may answer (e.g. 413) and close before the whole body was written.
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') resolve({ status: 0, headers: {}, text: '' });
      else reject(error);
    });
    if (req.body !== undefined && req.chunks && req.chunks > 1) {
      const size = Math.ceil(req.body.length / req.chunks) || 1;
      for (let offset = 0; offset < req.body.length; offset += size) call.write(req.body.subarray(offset, offset + size));
      call.end();
    } else {
      call.end(req.body);
    }
  });
}
