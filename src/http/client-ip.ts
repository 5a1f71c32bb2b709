import type { FastifyRequest } from 'fastify';
import { isIP } from 'node:net';

/**
 * The client's address: `request.ip` (X-Forwarded-For as far as TRUST_PROXY believes it) when it is
 * an IP address, otherwise the address of the connection, so that a proxy passing on whatever the
 * client wrote neither stores text as `client_ip` nor hands out fresh per-IP counts.
 */
export function clientIp(request: FastifyRequest): string {
  return isIP(request.ip) ? request.ip : (request.socket.remoteAddress ?? request.ip);
}
