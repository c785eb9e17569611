// What the WebAssembly runtime of this process can do: SIMD128 (required), shared memory
// (required), relaxed SIMD (optional; kernels have a plain-SIMD fallback). In Node 20, relaxed SIMD
// sits behind a V8 flag that can be switched on at run time before compiling.
// `ACTLAB_WASM_RELAXED=0` (or `relaxed: false`) forces the plain SIMD128 kernels.
import { FEATURE_PROBES } from './generated/kernels.js';
import { envVar } from '../../io/env.js';

export interface WasmFeatures {
  simd: boolean;
  threads: boolean;
  relaxed: boolean;
  /** Why relaxed SIMD is off, when it is. */
  relaxedNote?: string;
}

export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function validates(b64: string): boolean {
  try {
    return WebAssembly.validate(base64ToBytes(b64));
  } catch {
    return false;
  }
}

export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

function envRelaxed(): string | undefined {
  return envVar('ACTLAB_WASM_RELAXED');
}

let relaxedFlagTried = false;

/** Detects the features; `wantRelaxed: false` or ACTLAB_WASM_RELAXED=0 turn relaxed SIMD off. */
export async function detectFeatures(wantRelaxed?: boolean): Promise<WasmFeatures> {
  const simd = validates(FEATURE_PROBES.simd);
  const threads = validates(FEATURE_PROBES.threads) && typeof SharedArrayBuffer !== 'undefined';
  const env = envRelaxed();
  if (wantRelaxed === false) return { simd, threads, relaxed: false, relaxedNote: 'turned off by option' };
  if (wantRelaxed === undefined && env === '0') return { simd, threads, relaxed: false, relaxedNote: 'ACTLAB_WASM_RELAXED=0' };
  let relaxed = validates(FEATURE_PROBES.relaxed);
  if (!relaxed && isNode() && !relaxedFlagTried) {
    relaxedFlagTried = true;
    try {
      const v8 = await import('node:v8');
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // not fatal: plain SIMD kernels follow
    }
    relaxed = validates(FEATURE_PROBES.relaxed);
  }
  return relaxed ? { simd, threads, relaxed } : { simd, threads, relaxed, relaxedNote: 'not supported by this runtime' };
}
