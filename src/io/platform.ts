// The platform adapter: everything the core needs from its host (files, the network, memory size,
// environment variables, hashing), chosen once: Node's implementation (src/io/node/platform.ts,
// loaded by dynamic import so bundlers for the browser can leave it out) or the browser's.
// Core code calls `getPlatform()` and never imports node:* itself.
import { BlobSource, type ByteSource } from './byte-source.js';
import type { FileStore } from './file-store.js';
import { defaultFetch, HttpSource, type Fetch } from './http.js';
import { MemoryStore } from './memory-store.js';
import type { NativeGemmLoad } from './native-gemm.js';

/** Incremental SHA-256. */
export interface Hasher {
  update(bytes: Uint8Array): void;
  /** Lower-case hex. */
  digest(): Promise<string>;
}

export interface Platform {
  readonly name: 'node' | 'browser';
  /** A local path (Node) or URL (browser) as a ByteSource. */
  openFile(path: string): Promise<ByteSource>;
  /** Where files are written: the disk in Node, memory in the browser. */
  readonly store: FileStore;
  readonly fetch: Fetch;
  env(name: string): string | undefined;
  /** The user's home folder, or null where there is none. */
  homeDir(): string | null;
  /** Physical and available memory in bytes, or null when the platform does not say. */
  memory(): { total: number; free: number } | null;
  sha256(): Hasher;
  /** A native f32 GEMM for the wasm backend's large products (Node with onnxruntime-node); absent in the browser. */
  nativeGemm?(threads: number): Promise<NativeGemmLoad>;
}

let current: Promise<Platform> | null = null;

export function getPlatform(): Promise<Platform> {
  if (!current) {
    const isNode = typeof process !== 'undefined' && !!process.versions?.node;
    current = isNode ? import('./node/platform.js').then((m) => m.createNodePlatform()) : Promise.resolve(createBrowserPlatform());
  }
  return current;
}

/** Replaces the platform (tests, or an app with its own cache store). */
export function setPlatform(p: Platform): void {
  current = Promise.resolve(p);
}

/** The browser platform: paths are URLs read by range requests; files are written to memory. */
export function createBrowserPlatform(store: FileStore = new MemoryStore()): Platform {
  return {
    name: 'browser',
    openFile: async (path) => HttpSource.open(path),
    store,
    get fetch() { return defaultFetch(); },
    env: () => undefined,
    homeDir: () => null,
    memory: () => {
      const gb = (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory;
      return gb ? { total: gb * 2 ** 30, free: gb * 2 ** 30 } : null;
    },
    sha256: () => bufferedSha256(),
  };
}

/** WebCrypto has no incremental digest: keep the chunks and hash once at the end. */
function bufferedSha256(): Hasher {
  const chunks: Uint8Array[] = [];
  return {
    update: (b) => { chunks.push(b.slice()); },
    digest: async () => {
      const all = await new Blob(chunks as BlobPart[]).arrayBuffer();
      const h = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
      return Array.from(h, (x) => x.toString(16).padStart(2, '0')).join('');
    },
  };
}

/** A user-chosen File (from an <input> or drag and drop) as a ByteSource. */
export function fileSource(file: Blob): ByteSource {
  return new BlobSource(file);
}
