import { connect, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A TCP proxy a test can freeze: connections stay open, bytes stop flowing both ways. */
export interface StallingProxy {
  port: number;
  /** Holds back every byte in both directions, as a hung server or a black-holed network would. */
  stall(): void;
  /** Delivers what was held back, in order, and forwards again. */
  resume(): void;
  close(): Promise<void>;
}

/**
 * A queue that stops answering without dropping the connection is the case a
 * restarted server does not show: clients see no error and simply wait.
 * Held bytes are kept in arrival order so that nothing is lost or reordered.
 */
export async function startStallingProxy(target: { host: string; port: number }): Promise<StallingProxy> {
  let stalled = false;
  const held: Array<{ to: Socket; data: Buffer }> = [];
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket) =>
    from.on('data', (data: Buffer) => {
      if (stalled) held.push({ to, data });
      else to.write(data);
    });
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) sockets.add(s);
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) s.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stall: () => {
      stalled = true;
    },
    resume: () => {
      stalled = false;
      for (const { to, data } of held.splice(0)) if (!to.destroyed) to.write(data);
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
