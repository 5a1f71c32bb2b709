import { createServer } from 'node:net';
import { StartupError } from '../common/startup-error.js';

/**
 * Checks that PORT can be listened on (on HOST, or every address, as main.ts will), before the embedded
 * PostgreSQL is started and the migrations run, so that a port in use is one line naming PORT.
 * Another process may still take the port in between; then `listen` fails as before.
 * @param host HOST (null: every address)
 * @throws StartupError when the port is in use or needs privileges
 */
export async function assertPortAvailable(port: number, host: string | null = null): Promise<void> {
  try {
    if (host !== null && host !== '::') await probe(port, host);
    else {
      await probe(port, '::').catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EAFNOSUPPORT' && error.code !== 'EADDRNOTAVAIL') throw error;
        return probe(port, '0.0.0.0');
      });
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new StartupError(`PORT=${port} is already in use by another process: stop it, or set PORT to a free port.`);
    }
    if (code === 'EACCES') {
      throw new StartupError(`PORT=${port} needs privileges this process does not have: use a port above 1023, or grant them.`);
    }
    throw error;
  }
}

function probe(port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve()));
  });
}
