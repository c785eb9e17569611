// A small GGUF writer (version 3, little-endian, 32-byte alignment): metadata, tensor infos and
// tensor data, written atomically through a FileStore. It exists for tests and conversions (make a
// GGUF file from an HF fixture, read it back); @huggingface/gguf can serialise metadata but not a
// whole file with tensors, so the ~100 lines of layout are written here.
import { writeAtomic, type FileStore } from '../io/file-store.js';
import { f32ToBf16Bits, f32ToF16Bits } from '../tensor/dtype.js';
import { GGML_TYPE, ggmlBytes, quantizeQ4_0, quantizeQ8_0, type GgmlTypeName } from './gguf-quants.js';
import { quantizeQ4K, quantizeQ5K, quantizeQ6K } from './gguf-kquants.js';

/** GGUF metadata value types (gguf.h `enum gguf_type`). */
export const GGUF_VALUE = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9,
  UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
type ValueType = (typeof GGUF_VALUE)[keyof typeof GGUF_VALUE];

/** An explicitly typed value; plain values are typed by `inferType`. */
export interface Typed {
  type: ValueType;
  value: number | bigint | boolean | string | readonly (number | bigint | boolean | string)[];
}
export type GgufWriteValue = string | boolean | number | bigint | readonly string[] | readonly number[] | Typed;

export const u32 = (value: number): Typed => ({ type: GGUF_VALUE.UINT32, value });
export const f32 = (value: number): Typed => ({ type: GGUF_VALUE.FLOAT32, value });
export const f32s = (value: readonly number[]): Typed => ({ type: GGUF_VALUE.FLOAT32, value });
export const i32s = (value: readonly number[]): Typed => ({ type: GGUF_VALUE.INT32, value });

export interface GgufWriteTensor {
  name: string;
  type: GgmlTypeName;
  /** Row-major shape (written innermost-first, as GGUF wants). */
  shape: readonly number[];
  /** Raw bytes in `type`'s layout. */
  data: Uint8Array;
}

const ALIGN = 32;

/** f32 values -> the bytes of `type` (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K). */
export function encodeGgml(values: Float32Array, type: GgmlTypeName): Uint8Array {
  if (type !== 'F32' && type !== 'F16' && type !== 'BF16') {
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`gguf writer: value ${bad} is ${values[bad]}; ${type} blocks cannot hold NaN or Inf`);
  }
  switch (type) {
    case 'F32': return new Uint8Array(values.slice().buffer);
    case 'F16': return new Uint8Array(Uint16Array.from(values, f32ToF16Bits).buffer);
    case 'BF16': return new Uint8Array(Uint16Array.from(values, f32ToBf16Bits).buffer);
    case 'Q8_0': return quantizeQ8_0(values);
    case 'Q4_0': return quantizeQ4_0(values);
    case 'Q4_K': return quantizeQ4K(values);
    case 'Q5_K': return quantizeQ5K(values);
    case 'Q6_K': return quantizeQ6K(values);
    default: throw new Error(`gguf writer: cannot encode ${type} (it writes F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)`);
  }
}

class Buf {
  private parts: Uint8Array[] = [];
  length = 0;
  private push(b: Uint8Array): void { this.parts.push(b); this.length += b.byteLength; }
  private num(bytes: number, set: (dv: DataView) => void): void {
    const b = new Uint8Array(bytes);
    set(new DataView(b.buffer));
    this.push(b);
  }
  u32(v: number): void { this.num(4, (d) => d.setUint32(0, v, true)); }
  u64(v: number | bigint): void { this.num(8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  str(s: string): void { const b = new TextEncoder().encode(s); this.u64(b.byteLength); this.push(b); }
  pad(): void { const n = (ALIGN - (this.length % ALIGN)) % ALIGN; if (n) this.push(new Uint8Array(n)); }
  scalar(t: ValueType, v: number | bigint | boolean | string): void {
    switch (t) {
      case GGUF_VALUE.UINT8: return this.num(1, (d) => d.setUint8(0, Number(v)));
      case GGUF_VALUE.INT8: return this.num(1, (d) => d.setInt8(0, Number(v)));
      case GGUF_VALUE.UINT16: return this.num(2, (d) => d.setUint16(0, Number(v), true));
      case GGUF_VALUE.INT16: return this.num(2, (d) => d.setInt16(0, Number(v), true));
      case GGUF_VALUE.UINT32: return this.num(4, (d) => d.setUint32(0, Number(v), true));
      case GGUF_VALUE.INT32: return this.num(4, (d) => d.setInt32(0, Number(v), true));
      case GGUF_VALUE.FLOAT32: return this.num(4, (d) => d.setFloat32(0, Number(v), true));
      case GGUF_VALUE.BOOL: return this.num(1, (d) => d.setUint8(0, v ? 1 : 0));
      case GGUF_VALUE.STRING: return this.str(String(v));
      case GGUF_VALUE.UINT64: return this.u64(BigInt(v));
      case GGUF_VALUE.INT64: return this.num(8, (d) => d.setBigInt64(0, BigInt(v), true));
      case GGUF_VALUE.FLOAT64: return this.num(8, (d) => d.setFloat64(0, Number(v), true));
      default: throw new Error(`gguf writer: value type ${t} is not a scalar`);
    }
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) { out.set(p, o); o += p.byteLength; }
    return out;
  }
}

function inferType(v: number | bigint | boolean | string): ValueType {
  if (typeof v === 'string') return GGUF_VALUE.STRING;
  if (typeof v === 'boolean') return GGUF_VALUE.BOOL;
  if (typeof v === 'bigint') return GGUF_VALUE.UINT64;
  return Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31 ? GGUF_VALUE.INT32 : GGUF_VALUE.FLOAT32;
}

function writeKv(b: Buf, key: string, v: GgufWriteValue): void {
  b.str(key);
  const typed = typeof v === 'object' && !Array.isArray(v) ? v as Typed : null;
  const value = typed ? typed.value : v as Typed['value'];
  if (Array.isArray(value)) {
    const et = typed?.type ?? (value.length ? inferType(value[0]!) : GGUF_VALUE.INT32);
    b.u32(GGUF_VALUE.ARRAY);
    b.u32(et);
    b.u64(value.length);
    for (const x of value) b.scalar(et, x);
  } else {
    const t = typed?.type ?? inferType(value as number);
    b.u32(t);
    b.scalar(t, value as number);
  }
}

/** The whole file's bytes except tensor data: header, metadata, tensor infos, padding. */
function header(metadata: Record<string, GgufWriteValue>, tensors: readonly GgufWriteTensor[]): { head: Uint8Array; offsets: number[] } {
  const b = new Buf();
  for (const c of 'GGUF') b.scalar(GGUF_VALUE.UINT8, c.charCodeAt(0));
  b.u32(3);
  b.u64(tensors.length);
  const kvs = Object.entries(metadata);
  b.u64(kvs.length);
  for (const [k, v] of kvs) writeKv(b, k, v);
  const offsets: number[] = [];
  let off = 0;
  for (const t of tensors) {
    const n = t.shape.reduce((a, c) => a * c, 1);
    const need = ggmlBytes(t.type, n);
    if (t.data.byteLength !== need) throw new Error(`gguf writer: tensor '${t.name}' (${t.type}[${t.shape.join(', ')}]) needs ${need} bytes, got ${t.data.byteLength}`);
    b.str(t.name);
    b.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) b.u64(d);
    b.u32(GGML_TYPE[t.type]);
    b.u64(off);
    offsets.push(off);
    off += Math.ceil(need / ALIGN) * ALIGN;
  }
  b.pad();
  return { head: b.bytes(), offsets };
}

/** A whole GGUF file in memory (small files: a tokenizer's metadata, test fixtures). */
export function writeGgufBytes(metadata: Record<string, GgufWriteValue>, tensors: readonly GgufWriteTensor[]): Uint8Array {
  const { head } = header(metadata, tensors);
  const parts: Uint8Array[] = [head];
  for (const t of tensors) parts.push(t.data, new Uint8Array((ALIGN - (t.data.byteLength % ALIGN)) % ALIGN));
  const out = new Uint8Array(parts.reduce((a, b) => a + b.byteLength, 0));
  let o = 0;
  for (const b of parts) { out.set(b, o); o += b.byteLength; }
  return out;
}

/** Writes a GGUF file at `path`, atomically. */
export async function writeGguf(
  store: FileStore, path: string, metadata: Record<string, GgufWriteValue>, tensors: readonly GgufWriteTensor[],
): Promise<void> {
  const { head } = header(metadata, tensors);
  await writeAtomic(store, path, async (sink) => {
    await sink.write(head);
    for (const t of tensors) {
      await sink.write(t.data);
      const pad = (ALIGN - (t.data.byteLength % ALIGN)) % ALIGN;
      if (pad) await sink.write(new Uint8Array(pad));
    }
  });
}

/** Another GGUF file's `tokenizer.*` metadata (as read by @huggingface/gguf), typed for the writer: give a written model that file's tokenizer. */
export function tokenizerMetadata(meta: Record<string, unknown>): Record<string, GgufWriteValue> {
  const out: Record<string, GgufWriteValue> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (!k.startsWith('tokenizer.')) continue;
    if (Array.isArray(v)) out[k] = typeof v[0] === 'string' ? (v as string[]) : i32s((v as unknown[]).map(Number));
    else if (typeof v === 'number') out[k] = u32(v);
    else if (typeof v === 'bigint') out[k] = u32(Number(v));
    else if (typeof v === 'string' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}
