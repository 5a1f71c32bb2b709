import type { FastifyRequest } from 'fastify';
import { isIP } from 'node:net';

/** `::ffff:a.b.c.d`: an IPv4 client as a dual-stack (IPv6) socket reports it (RFC 4291 §2.5.5.2). */
const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * The client's address: `request.ip` (X-Forwarded-For as far as TRUST_PROXY believes it) when it is
 * an IP address, otherwise the address of the connection, so that a proxy passing on whatever the
 * client wrote neither stores text as `client_ip` nor hands out fresh per-IP counts. An IPv4-mapped
 * IPv6 address is given in its IPv4 form: one client, one spelling, whether the server listens on
 * IPv6 (`::`) or IPv4 only.
 */
export function clientIp(request: FastifyRequest): string {
  const address = isIP(request.ip) ? request.ip : (request.socket.remoteAddress ?? request.ip);
  return ipv4Unmapped(address);
}

/** `::ffff:127.0.0.1` → `127.0.0.1`; any other address unchanged. */
export function ipv4Unmapped(address: string): string {
  const mapped = IPV4_MAPPED.exec(address);
  return mapped && isIP(mapped[1]) === 4 ? mapped[1] : address;
}
