// The HTTP adapter: a `fetch` function (the platform's own by default; tests and proxies pass
// their own) and a ByteSource over HTTP range requests, for reading remote files lazily.
// Not for: the Hub's download cache (src/hub), which writes whole files to a FileStore.
import { checkRange, type ByteSource } from './byte-source.js';

export type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/** The platform's fetch (Node 20 and browsers both have one). */
export function defaultFetch(): Fetch {
  if (typeof globalThis.fetch !== 'function') throw new Error('no fetch() on this platform; pass one in the options');
  return globalThis.fetch.bind(globalThis);
}

/** A remote file read with `Range: bytes=a-b` requests. The size comes from a HEAD request. */
export class HttpSource implements ByteSource {
  private constructor(readonly name: string, readonly size: number, private fetchFn: Fetch, private headers: Record<string, string>) {}

  static async open(url: string, opts: { fetch?: Fetch; headers?: Record<string, string> } = {}): Promise<HttpSource> {
    const f = opts.fetch ?? defaultFetch();
    const res = await f(url, { method: 'HEAD', headers: opts.headers });
    if (!res.ok) throw new Error(`${url}: HEAD gave HTTP ${res.status} ${res.statusText}`);
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`${url}: the server did not report a size (Content-Length)`);
    return new HttpSource(url, size, f, opts.headers ?? {});
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this.name, this.size, offset, length);
    if (length === 0) return new Uint8Array(0);
    const res = await this.fetchFn(this.name, { headers: { ...this.headers, Range: `bytes=${offset}-${offset + length - 1}` } });
    if (res.status !== 206 && res.status !== 200) throw new Error(`${this.name}: range read gave HTTP ${res.status} ${res.statusText}`);
    const body = new Uint8Array(await res.arrayBuffer());
    // A server that ignores Range answers 200 with the whole file: take our part of it.
    const part = res.status === 200 ? body.subarray(offset, offset + length) : body;
    if (part.byteLength !== length) throw new Error(`${this.name}: asked for ${length} bytes at ${offset}, got ${part.byteLength}`);
    return part;
  }

  async close(): Promise<void> {}
}
