// An in-memory FileStore: the browser's default (a page has no disk to cache to without asking)
// and a convenient store for tests. Paths are plain '/'-joined strings.
import { BytesSource, type ByteSource } from './byte-source.js';
import type { FileStat, FileStore, WriteSink } from './file-store.js';

export class MemoryStore implements FileStore {
  readonly files = new Map<string, Uint8Array[]>();

  join(...parts: string[]): string {
    return parts.filter((p) => p !== '').join('/').replace(/\/+/g, '/');
  }

  async stat(path: string): Promise<FileStat | null> {
    const f = this.files.get(path);
    if (f) return { size: f.reduce((s, c) => s + c.byteLength, 0), isDirectory: false };
    const prefix = path.endsWith('/') ? path : `${path}/`;
    for (const k of this.files.keys()) if (k.startsWith(prefix)) return { size: 0, isDirectory: true };
    return null;
  }

  async readBytes(path: string): Promise<Uint8Array> {
    const f = this.files.get(path);
    if (!f) throw new Error(`${path}: no such file`);
    if (f.length !== 1) this.files.set(path, [concat(f)]);
    return this.files.get(path)![0]!;
  }

  async openRead(path: string): Promise<ByteSource> {
    return new BytesSource(await this.readBytes(path), path);
  }

  async openAppend(path: string): Promise<WriteSink> {
    if (!this.files.has(path)) this.files.set(path, []);
    const chunks = this.files.get(path)!;
    return {
      write: async (bytes) => { chunks.push(bytes.slice()); },
      close: async () => {},
    };
  }

  async rename(from: string, to: string): Promise<void> {
    const f = this.files.get(from);
    if (!f) throw new Error(`rename: ${from}: no such file`);
    this.files.set(to, f);
    this.files.delete(from);
  }

  async remove(path: string): Promise<void> {
    this.files.delete(path);
  }

  async list(dir: string): Promise<string[]> {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    const names = new Set<string>();
    for (const k of this.files.keys()) if (k.startsWith(prefix)) names.add(k.slice(prefix.length).split('/')[0]!);
    return [...names];
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.byteLength, 0));
  let o = 0;
  for (const c of chunks) { out.set(c, o); o += c.byteLength; }
  return out;
}
