import type { Duplex } from 'node:stream';

/**
 * Connections handed over to WebSockets. The HTTP server still counts them, but they carry no
 * HTTP response: the drain at shutdown (app.ts) must leave them to the WebSocket relay, which
 * closes them with a close frame instead of cutting them.
 */
const upgraded = new WeakSet<Duplex>();

export function markUpgraded(socket: Duplex): void {
  upgraded.add(socket);
}

export function isUpgraded(socket: Duplex): boolean {
  return upgraded.has(socket);
}
