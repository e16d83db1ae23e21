import { GatewayError } from '../errors/index.js';

/**
 * Responses the routes write themselves (relayed bodies and streams), so a shutdown can end the
 * ones still running after `drain_timeout` with an explicit error instead of a cut connection.
 */
export class ActiveStreams {
  private readonly stops = new Set<(error: GatewayError) => void>();

  get size(): number {
    return this.stops.size;
  }

  /** `stop` fails the upstream side; the route then ends the client response with an error event. Returns the unregister function. */
  add(stop: (error: GatewayError) => void): () => void {
    this.stops.add(stop);
    return () => this.stops.delete(stop);
  }

  stopAll(): void {
    const error = new GatewayError('shutting_down', 'The gateway is shutting down; the answer was cut. Retry the request.');
    for (const stop of [...this.stops]) stop(error);
    this.stops.clear();
  }
}
