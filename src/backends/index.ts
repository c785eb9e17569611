// The backends actlab ships, registered by name and created on first use.
// 'js' is the plain-TypeScript reference; 'wasm' the multi-threaded SIMD backend; 'webgpu' the GPU one.
import { registerBackend } from '../tensor/engine.js';
import { envVar } from '../io/env.js';

registerBackend('js', async () => (await import('./js/backend.js')).createJsBackend());
registerBackend('wasm', async () => (await import('./wasm/backend.js')).createWasmBackend());
// 'webgpu' needs a GPU adapter; ACTLAB_WEBGPU_FALLBACK=wasm|js lets it fall back to a CPU backend instead of failing.
// ACTLAB_WEBGPU_POOL_MB sets how many bytes of freed GPU buffers are kept for reuse (default 4 GiB):
// training works on more memory than that per step, and buffers made anew cost a zero-fill each.
registerBackend('webgpu', async () => (await import('./webgpu/backend.js')).createWebGpuBackend({ fallback: webgpuFallback(), poolLimitBytes: webgpuPool() }));

function webgpuPool(): number | undefined {
  const v = envVar('ACTLAB_WEBGPU_POOL_MB');
  if (v === undefined || v === '') return undefined;
  const mb = Number(v);
  if (!(mb >= 0)) throw new Error(`ACTLAB_WEBGPU_POOL_MB must be a number of MiB, got '${v}'`);
  return mb * 2 ** 20;
}

function webgpuFallback(): 'wasm' | 'js' | undefined {
  const v = envVar('ACTLAB_WEBGPU_FALLBACK');
  return v === 'wasm' || v === 'js' ? v : undefined;
}

export { UnsupportedOpError, SyncReadUnsupportedError, OP_NAMES } from '../tensor/backend.js';
export type { Backend, BackendBuffer, View, OpDesc, OpName, UnaryFn, BinaryFn, ReduceFn, QuantType } from '../tensor/backend.js';
