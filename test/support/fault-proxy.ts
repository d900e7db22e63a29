/**
 * An HTTP proxy in front of a real MLflow test server that injects faults on demand: connections
 * reset (server down), requests held without an answer (hung server), or error statuses with
 * `Retry-After` (rate limits, 5xx), for every request or only those whose path matches, while a
 * mode is set or for a number of requests. Everything else is forwarded unchanged, so what the
 * client writes lands in the real server. Not a mock of MLflow: the answers are the server's.
 */
import * as http from 'http';
import type * as net from 'net';

/** What the proxy does with a request. */
export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'reset' }
  | { kind: 'hang' }
  | {
      kind: 'status';
      status: number;
      retryAfter?: string;
      /** Only requests whose path matches; others pass. Default: all. */
      match?: RegExp;
      /** Only this many requests, then `then`. Default: while the mode is set. */
      count?: number;
      /** The mode once `count` requests got this one. Default: pass. */
      then?: FaultMode;
    };

/** One request seen. */
export interface SeenRequest {
  method: string;
  path: string;
  authorization?: string;
  /** The fault injected, if any. */
  fault?: FaultMode['kind'];
}

export class FaultProxy {
  mode: FaultMode = { kind: 'pass' };
  readonly seen: SeenRequest[] = [];
  private readonly sockets = new Set<net.Socket>();

  private readonly server: http.Server;
  private listeningPort = 0;

  private constructor(private readonly target: () => string) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 1000;
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  get port(): number {
    return this.listeningPort;
  }

  /** The proxy's base URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests that got a fault. */
  get faults(): number {
    return this.seen.filter((r) => r.fault !== undefined).length;
  }

  /** Starts a proxy to the server whose URL `target` gives (read per request). */
  static async start(target: () => string): Promise<FaultProxy> {
    const proxy = new FaultProxy(target);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.listeningPort = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  private faultFor(path: string): FaultMode | undefined {
    const mode = this.mode;
    if (mode.kind === 'pass') return undefined;
    if (mode.kind !== 'status') return mode;
    if (mode.match && !mode.match.test(path)) return undefined;
    if (mode.count !== undefined) {
      if (mode.count <= 0) {
        this.mode = mode.then ?? { kind: 'pass' };
        return this.faultFor(path);
      }
      mode.count--;
    }
    return mode;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const fault = this.faultFor(path);
    const auth = req.headers.authorization;
    this.seen.push({ method: req.method ?? 'GET', path, authorization: auth, fault: fault?.kind });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'hang') return; // never answer; the socket is closed by close()
    if (fault?.kind === 'status') {
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (fault.retryAfter !== undefined) headers['Retry-After'] = fault.retryAfter;
      res.writeHead(fault.status, headers);
      res.end(JSON.stringify({ error_code: 'INJECTED', message: `injected ${fault.status}` }));
      return;
    }
    try {
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'accept', 'authorization']) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
      const answer = await fetch(this.target() + path, {
        method: req.method,
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
      });
      const bytes = Buffer.from(await answer.arrayBuffer());
      res.writeHead(answer.status, {
        'Content-Type': answer.headers.get('content-type') ?? 'application/octet-stream',
      });
      res.end(bytes);
    } catch {
      req.socket.destroy(); // the server behind is down: so is the proxy, to the client
    }
  }

  /** Stops the proxy and drops every connection (held ones included). */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
