// One file from the Hub into the cache: HEAD for the size and sha256 the Hub advertises
// (X-Linked-Size / X-Linked-Etag for LFS files, else Content-Length / ETag), GET into `<file>.part`
// (resuming with `Range: bytes=<part size>-` when a .part is there), checks, then rename to the
// final name. A file that fails a check is deleted; one cut off mid-way keeps its .part.
// The sha256 is computed over the finished .part (one extra read), which also covers resumed files.
import type { FileStore } from '../io/file-store.js';
import type { Fetch } from '../io/http.js';
import type { Hasher } from '../io/platform.js';
import { HubFileNotFoundError, HubIntegrityError, HubInterruptedError, NetworkError } from './errors.js';

export interface DownloadProgress {
  id: string;
  file: string;
  /** Bytes in the cache so far (including what a resumed .part held). */
  loaded: number;
  /** Expected size, when the server said. */
  total: number | null;
  done: boolean;
}

export interface DownloadContext {
  id: string;
  store: FileStore;
  fetch: Fetch;
  sha256: () => Hasher;
  headers: Record<string, string>;
  onProgress?: (p: DownloadProgress) => void;
}

const SHA256 = /^[0-9a-f]{64}$/;

async function request(ctx: DownloadContext, url: string, init: RequestInit): Promise<Response> {
  try {
    return await ctx.fetch(url, init);
  } catch (e) {
    throw new NetworkError(url, e);
  }
}

/** Size and sha256 the server advertises for `url`; throws HubFileNotFoundError on 4xx. */
async function head(ctx: DownloadContext, url: string, file: string): Promise<{ size: number | null; sha: string | null }> {
  // 'manual' keeps the Hub's own headers of an LFS redirect (the CDN's ETag is not a sha256).
  let res = await request(ctx, url, { method: 'HEAD', headers: ctx.headers, redirect: 'manual' });
  if (res.type === 'opaqueredirect') res = await request(ctx, url, { method: 'HEAD', headers: ctx.headers });
  if (res.status === 405 || res.status === 501) return { size: null, sha: null }; // a mirror without HEAD: no checks
  if (res.status >= 400) throw new HubFileNotFoundError(ctx.id, file, url, res.status);
  const h = res.headers;
  const size = Number(h.get('x-linked-size') ?? (res.status < 300 ? h.get('content-length') : null) ?? NaN);
  const etag = (h.get('x-linked-etag') ?? h.get('etag') ?? '').replace(/^W\//, '').replace(/"/g, '').toLowerCase();
  return { size: Number.isSafeInteger(size) ? size : null, sha: SHA256.test(etag) ? etag : null };
}

async function hashFile(ctx: DownloadContext, path: string, h: Hasher): Promise<void> {
  const src = await ctx.store.openRead(path);
  try {
    for (let o = 0; o < src.size; o += 1 << 24) h.update(await src.read(o, Math.min(1 << 24, src.size - o)));
  } finally {
    await src.close();
  }
}

/** Downloads `url` to `dest` in the store (skipped when `dest` exists). */
export async function downloadFile(ctx: DownloadContext, url: string, file: string, dest: string): Promise<void> {
  const { store } = ctx;
  if ((await store.stat(dest))?.isDirectory === false) return;
  const part = `${dest}.part`;
  const { size, sha } = await head(ctx, url, file);
  let have = (await store.stat(part))?.size ?? 0;
  if (size !== null && have > size) { await store.remove(part); have = 0; }
  const hasher = sha ? ctx.sha256() : null;
  const headers = { ...ctx.headers, ...(have > 0 && have !== size ? { Range: `bytes=${have}-` } : {}) };
  if (have > 0 && have === size) {
    // A complete .part from an earlier run that stopped before the checks.
  } else {
    const res = await request(ctx, url, { headers });
    if (res.status === 416) { await store.remove(part); throw new HubIntegrityError(ctx.id, file, `the server refused to resume from byte ${have}`); }
    if (res.status >= 400) throw new HubFileNotFoundError(ctx.id, file, url, res.status);
    if (have > 0 && res.status !== 206) { await store.remove(part); have = 0; } // the server ignored Range: start over
    const total = size ?? (res.headers.get('content-length') ? have + Number(res.headers.get('content-length')) : null);
    const sink = await store.openAppend(part);
    let loaded = have;
    try {
      if (!res.body) throw new Error('the response has no body');
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await sink.write(value);
        loaded += value.byteLength;
        ctx.onProgress?.({ id: ctx.id, file, loaded, total, done: false });
      }
    } catch (e) {
      await sink.close();
      throw new HubInterruptedError(ctx.id, file, part, loaded, total, e);
    }
    await sink.close();
  }
  const got = (await store.stat(part))?.size ?? 0;
  if (size !== null && got !== size) {
    if (got < size) throw new HubInterruptedError(ctx.id, file, part, got, size, new Error('the body ended early'));
    await store.remove(part);
    throw new HubIntegrityError(ctx.id, file, `${got} bytes arrived, the server announced ${size}`);
  }
  if (hasher && sha) {
    await hashFile(ctx, part, hasher);
    const digest = await hasher.digest();
    if (digest !== sha) {
      await store.remove(part);
      throw new HubIntegrityError(ctx.id, file, `sha256 ${digest} does not match the expected ${sha}`);
    }
  }
  await store.rename(part, dest);
  ctx.onProgress?.({ id: ctx.id, file, loaded: got, total: size ?? got, done: true });
}
