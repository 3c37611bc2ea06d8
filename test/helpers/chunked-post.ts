// A webhook POST written on a raw socket, its body in chunked pieces `gapMs` apart (or left open when
// `hold`): the server really sees a slow sender, which an HTTP client library (or nock) would hide by
// buffering the body.
import { connect } from 'node:net';

export interface ChunkedPost {
  /** The reply, once the server closes the connection (status 0 if it never answered). */
  done: Promise<{ status: number; text: string }>;
  /** Every piece written (and the body ended, unless held). */
  written: Promise<void>;
  /** Ends a held body. */
  finish: () => void;
}

/** Headers with an empty value are left out (to drop the default `transfer-encoding`, say). */
export function chunkedPost(port: number, path: string, headers: Record<string, string>, pieces: Array<string | Buffer>, opts: { gapMs?: number; hold?: boolean } = {}): ChunkedPost {
  const socket = connect(port, '127.0.0.1');
  let raw = '';
  const done = new Promise<{ status: number; text: string }>((resolve) => {
    socket.on('data', (c) => (raw += c));
    // A refused request closes the connection, possibly while we are still writing: that is the point.
    socket.on('error', () => {});
    socket.on('close', () => {
      const [head = '', ...rest] = raw.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      const body = rest.join('\r\n\r\n');
      // The reply is either chunked or has a content-length; small either way.
      const text = /transfer-encoding: chunked/i.test(head) ? body.split('\r\n').filter((_, i) => i % 2 === 1).join('') : body;
      resolve({ status, text });
    });
  });
  const write = (data: string | Buffer) => {
    if (!socket.destroyed) socket.write(data);
  };
  const end = () => write('0\r\n\r\n');
  const lines = Object.entries({ 'content-type': 'application/json', 'transfer-encoding': 'chunked', connection: 'close', ...headers })
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}: ${v}`);
  const written = (async () => {
    await new Promise((r) => socket.once('connect', r));
    write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${lines.join('\r\n')}\r\n\r\n`);
    for (const piece of pieces) {
      const bytes = Buffer.from(piece);
      write(`${bytes.length.toString(16)}\r\n`);
      write(bytes);
      write('\r\n');
      if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
    }
    if (!opts.hold) end();
  })();
  return { done, written, finish: end };
}
