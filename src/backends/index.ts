// The backends actlab ships, registered by name and created on first use.
// 'js' is the plain-TypeScript reference; 'wasm' the multi-threaded SIMD backend.
import { registerBackend } from '../tensor/engine.js';

registerBackend('js', async () => (await import('./js/backend.js')).createJsBackend());
registerBackend('wasm', async () => (await import('./wasm/backend.js')).createWasmBackend());

export { UnsupportedOpError, SyncReadUnsupportedError, OP_NAMES } from './backend.js';
export type { Backend, BackendBuffer, View, OpDesc, OpName, UnaryFn, BinaryFn, ReduceFn, QuantType } from './backend.js';
