// Node's platform adapter: files through fs/promises, memory from node:os, SHA-256 from node:crypto,
// the wasm backend's native GEMM from onnxruntime-node when it is installed (native-gemm.ts).
import { createHash } from 'node:crypto';
import { freemem, homedir, totalmem } from 'node:os';
import { defaultFetch } from '../http.js';
import type { Platform } from '../platform.js';
import { NodeFileSource } from './file-source.js';
import { NodeFileStore } from './file-store.js';

const NATIVE_GEMM_ADAPTER = './native-gemm.js';

export function createNodePlatform(): Platform {
  return {
    name: 'node',
    openFile: (path) => NodeFileSource.open(path),
    store: new NodeFileStore(),
    get fetch() { return defaultFetch(); },
    env: (name) => process.env[name],
    homeDir: () => homedir(),
    memory: () => ({ total: totalmem(), free: freemem() }),
    // a computed specifier, so that browser bundles of the core do not pull in the Node adapter
    nativeGemm: async (threads) => ((await import(/* @vite-ignore */ NATIVE_GEMM_ADAPTER)) as typeof import('./native-gemm.js')).loadNativeGemm(threads),
    sha256: () => {
      const h = createHash('sha256');
      return { update: (b) => { h.update(b); }, digest: async () => h.digest('hex') };
    },
  };
}
