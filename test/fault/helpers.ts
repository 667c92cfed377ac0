import { createServer, type Server, type Socket } from 'node:net';

/**
 * Misbehaving HTTP peers on loopback for the fault suite. Each is a real TCP server speaking just enough
 * HTTP/1.1 to put a client in the state under test; all traffic stays on 127.0.0.1 and every server is closed by
 * the test that started it.
 */
export interface FaultServer {
  url: string;
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

async function listen(onSocket: (s: Socket) => void): Promise<FaultServer> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const state = { connections: 0 };
  const server: Server = createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    onSocket(s);
  });
  (server as Server & { faultTimers?: Set<NodeJS.Timeout> }).faultTimers = timers;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Reads the request head, then calls `then` (body bytes, if any, are ignored). */
function afterRequestHead(s: Socket, then: () => void): void {
  let head = '';
  const onData = (b: Buffer) => {
    head += b.toString('latin1');
    if (head.includes('\r\n\r\n')) {
      s.off('data', onData);
      s.on('data', () => undefined);
      then();
    }
  };
  s.on('data', onData);
}

/** Sends headers promising a JSON body, then one byte every `everyMs`, for ever (the timeout-resetting drip). */
export function drippingServer(everyMs = 500): Promise<FaultServer> {
  return listen((s) => {
    afterRequestHead(s, () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{');
      const t = setInterval(() => {
        if (s.destroyed) return clearInterval(t);
        s.write(' ');
      }, everyMs);
      s.on('close', () => clearInterval(t));
    });
  });
}

/** Accepts the connection and never answers. */
export function silentServer(): Promise<FaultServer> {
  return listen(() => undefined);
}

/** Reads the request and closes the connection without a byte of answer. */
export function closingServer(): Promise<FaultServer> {
  return listen((s) => afterRequestHead(s, () => s.destroy()));
}

/** Answers after `delayMs` with `status` and a JSON body (a slow but otherwise healthy peer). */
export function slowServer(delayMs: number, status = 503, body = '{"error":{"code":"unavailable","message":"slow"}}'): Promise<FaultServer> {
  return listen((s) =>
    afterRequestHead(s, () => {
      const t = setTimeout(() => {
        if (!s.destroyed) s.end(`HTTP/1.1 ${status} X\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      }, delayMs);
      s.on('close', () => clearTimeout(t));
    }),
  );
}
