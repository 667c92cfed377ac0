/**
 * The broker client's transport: one request, the whole answer as text. The default uses node:http(s) directly —
 * the first `fetch` in a fresh process loads undici, which costs tens of milliseconds on every guarded call; a
 * caller (tests) may pass a fetch instead. Only the module the URL needs is loaded, when it is needed: node:https
 * brings TLS with it (about 4 CPU-ms of start-up), which a loopback broker never uses; a static import of either
 * would load it on every call (issue 14).
 */
export interface HttpAnswer {
  status: number;
  text: string;
}
export interface HttpSend {
  (
    url: string,
    init: {
      method: string;
      headers: Record<string, string>;
      body?: string | Uint8Array;
      timeoutMs: number;
      /** Gives up on a connect (and TLS handshake) that has not completed by then; the error is `unsent`. */
      connectTimeoutMs?: number;
    },
  ): Promise<HttpAnswer>;
}

/** Bodies larger than this are refused rather than buffered (a broker never sends that much). */
const MAX_BODY = 32 * 1024 * 1024;

/**
 * Every error carries `unsent`: true when it happened before the connection (and its TLS handshake) was up, so not
 * a byte of the request reached a server — the one case in which a non-idempotent request may go to another broker
 * (src/api/broker-urls.ts). A reused keep-alive socket counts as connected: a request written to it may have arrived.
 *
 * `timeoutMs` is a total deadline for the whole exchange — connect, send, headers and every byte of the body.
 * node's own `timeout` option is an idle timer that every received byte resets, so a peer (or proxy) dripping one
 * byte every few seconds would keep a call waiting for ever; the deadline timer cannot be reset.
 */
export const nodeHttpSend: HttpSend = (url, init) =>
  new Promise<HttpAnswer>((resolvePromise, rejectPromise) => {
    const u = new URL(url);
    const { request } = process.getBuiltinModule(u.protocol === 'https:' ? 'node:https' : 'node:http');
    const deadline = setTimeout(() => req.destroy(timedOut()), init.timeoutMs);
    let connected = false;
    const connectDeadline =
      init.connectTimeoutMs !== undefined && init.connectTimeoutMs < init.timeoutMs
        ? setTimeout(() => {
            if (!connected) req.destroy(Object.assign(new Error(`no connection within ${init.connectTimeoutMs} ms`), { code: 'ECONNECT_TIMEOUT' }));
          }, init.connectTimeoutMs)
        : undefined;
    const resolve = (a: HttpAnswer) => {
      clearTimeout(deadline);
      clearTimeout(connectDeadline);
      resolvePromise(a);
    };
    const reject = (e: unknown) => {
      clearTimeout(deadline);
      clearTimeout(connectDeadline);
      // An error object we did not make (node's) gets the mark; ours are fresh each time.
      if (e && typeof e === 'object' && !('unsent' in e)) Object.assign(e, { unsent: !connected });
      rejectPromise(e);
    };
    const req = request(u, { method: init.method, headers: init.headers, timeout: init.timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          req.destroy(new Error('response too large'));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
      // A body cut off by destroy() ends in 'aborted'/'close' without 'end': surface the request's error.
      res.on('close', () => {
        if (!res.complete) reject(req.destroyed && deadlineHit ? timedOut() : new Error('connection closed before the answer was complete'));
      });
    });
    let deadlineHit = false;
    const timedOut = () => {
      deadlineHit = true;
      return Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    };
    req.on('socket', (socket) => {
      // TLS: only once the handshake is done can request bytes leave (they are encrypted under its keys).
      const event = u.protocol === 'https:' ? 'secureConnect' : 'connect';
      // A socket the agent kept alive is up already; a fresh one is still connecting when handed over.
      if (req.reusedSocket) {
        connected = true;
        clearTimeout(connectDeadline);
        return;
      }
      socket.once(event, () => {
        connected = true;
        clearTimeout(connectDeadline);
      });
    });
    req.on('timeout', () => req.destroy(timedOut()));
    req.on('error', reject);
    req.end(init.body);
  });

/** Adapts a fetch (injected in tests) to the transport. */
export function fetchSend(f: typeof fetch): HttpSend {
  return async (url, init) => {
    const res = await f(url, {
      method: init.method,
      headers: init.headers,
      ...(init.body !== undefined ? { body: init.body as BodyInit } : {}),
      signal: AbortSignal.timeout(init.timeoutMs),
    });
    return { status: res.status, text: await res.text() };
  };
}
