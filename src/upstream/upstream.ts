import { Pool, ProxyAgent, type Dispatcher } from 'undici';

export interface UpstreamOptions {
  name: string;
  baseUrl: string;
  proxy: string | undefined;
  connectTimeoutMs: number;
}

/** The connection to one upstream: where it is and how to reach it (a keep-alive pool, or a proxy). Keys live in the pool. */
export class Upstream {
  readonly name: string;
  readonly origin: string;
  /** Path prefix of the base URL without a trailing slash, e.g. `/v1`. */
  readonly basePath: string;
  readonly host: string;
  readonly dispatcher: Dispatcher;

  constructor(options: UpstreamOptions) {
    const url = new URL(options.baseUrl);
    this.name = options.name;
    this.origin = url.origin;
    this.host = url.host;
    this.basePath = url.pathname.replace(/\/+$/, '');
    const connect = { timeout: options.connectTimeoutMs };
    this.dispatcher = options.proxy
      ? new ProxyAgent({ uri: options.proxy, connect, proxyTls: connect, requestTls: connect })
      : new Pool(url.origin, {
          connect,
          // Upstream keep-alive: reuse sockets across requests; OpenAI's edge keeps them ~60 s.
          keepAliveTimeout: 30_000,
          keepAliveMaxTimeout: 60_000,
          pipelining: 1,
        });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
