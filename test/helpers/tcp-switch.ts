import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP pass-through on 127.0.0.1 that a test can cut and restore, to play a database (or any
 * server) going away and coming back while the gateway runs.
 */
export class TcpSwitch {
  private readonly sockets = new Set<Socket>();
  private enabled = true;
  private constructor(private readonly server: Server) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpSwitch> {
    const server = createServer();
    const proxy = new TcpSwitch(server);
    server.on('connection', (client) => {
      if (!proxy.enabled) {
        client.destroy();
        return;
      }
      const target = connect(targetPort, targetHost);
      proxy.sockets.add(client).add(target);
      const drop = (): void => {
        client.destroy();
        target.destroy();
        proxy.sockets.delete(client);
        proxy.sockets.delete(target);
      };
      client.on('error', drop).on('close', drop);
      target.on('error', drop).on('close', drop);
      client.pipe(target).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Drops every open connection and refuses new ones. */
  cut(): void {
    this.enabled = false;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.enabled = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
