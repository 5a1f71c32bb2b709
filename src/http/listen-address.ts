/**
 * How a start-up line shows where a process listens: a URL to open (`localhost` for every
 * address, IPv6 literals in brackets, RFC 3986) and what bound it (`every address`, or `HOST=…`).
 * @param host the HOST setting, null when unset (every address)
 */
export function describeListenAddress(host: string | null, port: number): { url: string; bound: string } {
  const shown = host === null || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return { url: `http://${shown}:${port}`, bound: host === null ? 'every address' : `HOST=${host}` };
}
