// Attention on a packed KV cache in plain TypeScript, from the stream bytes: every visible key
// decoded (codec.ts `decodeRow`), rotated at its stored position when the cache holds pre-RoPE
// keys, then softmax(scale · q·k) · v in float64. The specification the wasm kernel
// (src/backends/wasm/kernels/kvattn.wat.mjs) is checked against, and the path of backends without
// that kernel that can still read their buffers synchronously (js).
import { decodeRow, type StreamBytes, type StreamLayout } from './codec.js';

export interface HostStream {
  layout: StreamLayout;
  bytes: StreamBytes;
}

export interface HostRope {
  /** cos and sin f32 [positions, 2, rot / 2] (each position's cos row, then its sin row). */
  table: Float32Array;
  rotaryDim: number;
  mode: 'half' | 'interleaved';
}

/** Rotates x (d values from `at`) by the angles of `pos`, as the kernel does (f32 products). */
export function rotateAt(x: Float32Array, at: number, pos: number, r: HostRope): void {
  const half = r.rotaryDim / 2;
  for (let i = 0; i < half; i++) {
    const [a, b] = r.mode === 'half' ? [at + i, at + i + half] : [at + 2 * i, at + 2 * i + 1];
    const co = r.table[pos * 2 * half + i]!, si = r.table[(pos * 2 + 1) * half + i]!;
    const xa = x[a]!, xb = x[b]!;
    x[a] = Math.fround(Math.fround(xa * co) - Math.fround(xb * si));
    x[b] = Math.fround(Math.fround(xb * co) + Math.fround(xa * si));
  }
}

/** Position stored for `row` of a stream. */
export function rowPosition(s: HostStream, row: number): number {
  const m = s.bytes.main;
  return new DataView(m.buffer, m.byteOffset, m.byteLength).getInt32(s.layout.oPos + 4 * row, true);
}

/** All tk positions of kv head slices, f32 [b, hkv, tk, d] (keys rotated when `rope`). */
export function dequantizeStream(s: HostStream, B: number, hkv: number, tk: number, d: number, rope?: HostRope): Float32Array {
  const y = new Float32Array(B * hkv * tk * d);
  const row = new Float32Array(s.layout.R);
  for (let j = 0; j < tk; j++) {
    for (let b = 0; b < B; b++) {
      const r = j * B + b;
      decodeRow(s.layout, s.bytes, r, 0, s.layout.R, row);
      for (let h = 0; h < hkv; h++) {
        const at = ((b * hkv + h) * tk + j) * d;
        y.set(row.subarray(h * d, (h + 1) * d), at);
        if (rope) rotateAt(y, at, rowPosition(s, r), rope);
      }
    }
  }
  return y;
}

/**
 * q f32 [b, hq, tq, d] (dense) -> y f32 [b, hq, tq, dv]: causal attention (offset tk − tq) over the
 * packed keys and values, u8 key mask [b, tk] (1 = attend) when given.
 */
export function kvAttentionReference(
  q: Float32Array, shape: readonly [number, number, number, number], k: HostStream, v: HostStream,
  o: { hkv: number; tk: number; dv: number; scale: number; causal: boolean; mask?: Uint8Array; rope?: HostRope },
): Float32Array {
  const [B, HQ, TQ, D] = shape;
  const { hkv, tk, dv } = o;
  const K = dequantizeStream(k, B, hkv, tk, D, o.rope);
  const V = dequantizeStream(v, B, hkv, tk, dv);
  const y = new Float32Array(B * HQ * TQ * dv);
  const s = new Float64Array(tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < HQ; h++) {
      const kh = Math.floor(h / (HQ / hkv));
      for (let i = 0; i < TQ; i++) {
        const nv = o.causal ? Math.max(0, Math.min(tk, i + tk - TQ + 1)) : tk;
        const qa = ((b * HQ + h) * TQ + i) * D;
        let mx = -Infinity;
        for (let j = 0; j < nv; j++) {
          if (o.mask && !o.mask[b * tk + j]) { s[j] = -Infinity; continue; }
          let t = 0;
          const ka = ((b * hkv + kh) * tk + j) * D;
          for (let c = 0; c < D; c++) t += q[qa + c]! * K[ka + c]!;
          s[j] = t * o.scale;
          mx = Math.max(mx, s[j]!);
        }
        let sum = 0;
        for (let j = 0; j < nv; j++) { s[j] = s[j] === -Infinity ? 0 : Math.exp(s[j]! - mx); sum += s[j]!; }
        const ya = ((b * HQ + h) * TQ + i) * dv;
        for (let j = 0; j < nv; j++) {
          if (!s[j]) continue;
          const p = s[j]! / sum, va = ((b * hkv + kh) * tk + j) * dv;
          for (let c = 0; c < dv; c++) y[ya + c] += p * V[va + c]!;
        }
      }
    }
  }
  return y;
}
