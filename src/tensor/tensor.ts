// Tensor: a typed, strided view of a backend buffer, with explicit ownership.
// Views (reshape of contiguous data, transpose, permute, slice, broadcastTo, squeeze, unsqueeze)
// share the buffer and never copy; the buffer is freed when the last tensor viewing it is disposed.
// Not for: arithmetic (src/ops), device code (src/backends).
import type { Backend, BackendBuffer, View } from './backend.js';
import { DisposedError, DTypeError, OutOfMemoryError, ShapeError } from './errors.js';
import {
  bf16BitsToF32, byteSize, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, isPacked, toIntDType, type DType,
} from './dtype.js';
import {
  assertShape, broadcastShapes, broadcastStrides, contiguousStrides, fmtShape, isContiguous, normAxis, numel,
  viewStrides, type Shape,
} from './shape.js';
import { dispatch, getBackend, track } from './engine.js';
import { describeLive, noteAlloc, noteFree, noteTensor } from './live.js';

/** A backend buffer shared by the tensors that view it; freed when the last one lets go. */
export class Storage {
  private refs = 1;
  /** The op (or creation function) that allocated the buffer, for the live-tensor bookkeeping (live.ts). */
  private readonly origin: string;
  constructor(readonly backend: Backend, readonly buffer: BackendBuffer, origin = 'tensor') {
    this.origin = noteAlloc(buffer.byteLength, origin);
  }
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs === 0) {
      noteFree(this.origin, this.buffer.byteLength);
      this.backend.free(this.buffer);
    }
  }
  get alive(): boolean {
    return this.refs > 0;
  }
}

/** What `data()` returns for each dtype (f16/bf16 widen to f32; packed 4-bit unpack to one per byte). */
export type DataFor<D extends DType> =
  D extends 'f32' | 'f16' | 'bf16' ? Float32Array :
  D extends 'i32' ? Int32Array : D extends 'i8' | 'i4' ? Int8Array : Uint8Array;
export type TensorData = Float32Array | Int32Array | Int8Array | Uint8Array;

/** What a view method did, for the autograd tape (src/autograd), which records its inverse. */
export type ViewKind =
  | { kind: 'share' }
  | { kind: 'reshape'; from: readonly number[] }
  | { kind: 'permute'; perm: readonly number[] }
  | { kind: 'slice'; starts: readonly number[]; from: readonly number[] }
  | { kind: 'broadcast'; from: readonly number[] };

type ViewRecorder = (src: Tensor, out: Tensor, v: () => ViewKind) => void;
let viewRecorder: ViewRecorder | null = null;

/** Installed by src/autograd: called after a view of a tensor that requires grad is made. */
export function setViewRecorder(f: ViewRecorder | null): void {
  viewRecorder = f;
}

function recorded(src: Tensor, out: Tensor, v: () => ViewKind): Tensor {
  if (viewRecorder && src.requiresGrad) viewRecorder(src, out, v);
  return out;
}

export class Tensor {
  private storage: Storage | null;
  /** Autograd (src/autograd): gradients flow to this tensor. Set by `variable()` / `requireGrad()` and on recorded outputs. */
  requiresGrad = false;
  /** Autograd: the tape node that made this tensor and which of its outputs it is (null for leaves). */
  gradFn: { readonly node: unknown; readonly index: number } | null = null;
  /** Autograd: a leaf's accumulated gradient after `backward()` (owned by the tensor's user; dispose it). */
  grad: Tensor | null = null;

  constructor(
    storage: Storage,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    readonly offset = 0,
  ) {
    this.storage = storage;
    noteTensor(1);
    track(this);
  }

  /**
   * An uninitialised contiguous tensor (zero-filled on CPU backends). When the backend cannot
   * allocate, the error says how many tensors are alive and which ops made most of them.
   */
  static empty(shape: Shape, dtype: DType, backend: Backend = getBackend(), origin = 'tensor'): Tensor {
    assertShape(shape, 'empty');
    const n = byteSize(dtype, numel(shape));
    let buf: BackendBuffer;
    try {
      buf = backend.alloc(n);
    } catch (e) {
      throw new OutOfMemoryError(`${(e as Error).message}\n  while allocating ${dtype}${fmtShape(shape)} (${n} bytes) on ${backend.name}: ${describeLive()}`, { cause: e });
    }
    return new Tensor(new Storage(backend, buf, origin), dtype, [...shape], contiguousStrides(shape));
  }

  /** A contiguous tensor holding `values` (numbers converted to `dtype` as a cast would). */
  static from(values: ArrayLike<number>, shape: Shape, dtype: DType = 'f32', backend: Backend = getBackend()): Tensor {
    assertShape(shape, 'tensor');
    if (values.length !== numel(shape)) {
      throw new ShapeError(`tensor: ${values.length} values do not fill shape ${fmtShape(shape)} (${numel(shape)} elements)`);
    }
    const t = Tensor.empty(shape, dtype, backend);
    backend.write(t.storage!.buffer, 0, encode(values, dtype));
    return t;
  }

  /**
   * A contiguous tensor over raw little-endian bytes of `dtype`. `weight`: the bytes are a weight
   * that ops only read, which the backend may keep outside its kernel memory (`allocWeights`).
   */
  static fromBytes(bytes: Uint8Array, shape: Shape, dtype: DType, backend: Backend = getBackend(), opts: { weight?: boolean } = {}): Tensor {
    assertShape(shape, 'fromBytes');
    const need = byteSize(dtype, numel(shape));
    if (bytes.byteLength !== need) {
      throw new ShapeError(`fromBytes: ${bytes.byteLength} bytes given for ${dtype}${fmtShape(shape)}, which needs ${need}`);
    }
    const t = opts.weight && backend.allocWeights
      ? new Tensor(new Storage(backend, backend.allocWeights(need), 'fromBytes'), dtype, [...shape], contiguousStrides(shape))
      : Tensor.empty(shape, dtype, backend, 'fromBytes');
    backend.write(t.storage!.buffer, 0, bytes);
    return t;
  }

  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  get isDisposed(): boolean {
    return this.storage === null;
  }
  get backend(): Backend {
    return this.live('backend').backend;
  }
  get isContiguous(): boolean {
    return this.offset === 0 && isContiguous(this.shape, this.strides);
  }

  /** The backend-level view; throws if disposed. `where` names the op for the error. */
  view(where: string | (() => string) = 'tensor'): View {
    const s = this.live(where);
    return { buffer: s.buffer, dtype: this.dtype, shape: this.shape, strides: this.strides, offset: this.offset };
  }

  dispose(): void {
    if (this.storage) {
      this.storage.release();
      this.storage = null;
      noteTensor(-1);
    }
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype}${fmtShape(this.shape)} on ${this.storage ? this.storage.backend.name : 'disposed'})`;
  }

  /** Marks this tensor as a leaf that gradients flow to (see src/autograd). */
  requireGrad(on = true): this {
    this.requiresGrad = on;
    return this;
  }

  /** The shared memory's identity (autograd uses it to follow writes into views). */
  get storageKey(): object {
    return this.live('storageKey');
  }

  /** A view with explicit geometry over this tensor's memory (autograd addresses written regions with it). */
  asStrided(shape: readonly number[], strides: readonly number[], offset: number): Tensor {
    return this.derive(shape, strides, offset);
  }

  // ---- views: share the buffer, no copy ----

  /** Another handle on the same memory, with its own lifetime (the memory lives until both are disposed). */
  share(): Tensor {
    return recorded(this, this.derive(this.shape, this.strides, this.offset), () => ({ kind: 'share' }));
  }

  private derive(shape: readonly number[], strides: readonly number[], offset: number): Tensor {
    return new Tensor(this.live('view').retain(), this.dtype, shape, strides, offset);
  }

  reshape(shape: readonly number[]): Tensor {
    this.live('reshape');
    const out = resolveReshape(shape, this.size, this.shape);
    if (isContiguous(this.shape, this.strides)) {
      return recorded(this, this.derive(out, contiguousStrides(out), this.offset), () => ({ kind: 'reshape', from: this.shape }));
    }
    const strides = isPacked(this.dtype) ? null : viewStrides(this.shape, this.strides, out);
    if (strides) return recorded(this, this.derive(out, strides, this.offset), () => ({ kind: 'reshape', from: this.shape }));
    // Not expressible as a view: materialise, then view the copy (the result owns it).
    const c = this.contiguous();
    const r = c.reshape(out);
    c.dispose();
    return r;
  }

  /** Reverses the dims, or applies `perm`. */
  permute(perm: readonly number[]): Tensor {
    if (perm.length !== this.rank || new Set(perm.map((p) => normAxis(p, this.rank, 'permute'))).size !== this.rank) {
      throw new ShapeError(`permute: ${JSON.stringify(perm)} is not a permutation of the ${this.rank} dims of ${fmtShape(this.shape)}`);
    }
    const p = perm.map((x) => normAxis(x, this.rank, 'permute'));
    return recorded(this, this.derive(p.map((i) => this.shape[i]!), p.map((i) => this.strides[i]!), this.offset), () => ({ kind: 'permute', perm: p }));
  }

  /** Swaps two axes (default: the last two). */
  transpose(a = -2, b = -1): Tensor {
    const i = normAxis(a, this.rank, 'transpose');
    const j = normAxis(b, this.rank, 'transpose');
    const perm = [...Array(this.rank).keys()];
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    return this.permute(perm);
  }

  /** `start`/`end` per axis from the first; `end` may be negative; missing axes are taken whole. */
  slice(starts: readonly number[], ends?: readonly (number | undefined)[]): Tensor {
    if (starts.length > this.rank) throw new ShapeError(`slice: ${starts.length} starts for a tensor of rank ${this.rank}`);
    const shape = [...this.shape];
    let off = this.offset;
    const from: number[] = [];
    for (let i = 0; i < starts.length; i++) {
      const n = this.shape[i]!;
      const s0 = starts[i]! < 0 ? starts[i]! + n : starts[i]!;
      let e0 = ends?.[i] ?? n;
      if (e0 < 0) e0 += n;
      if (!Number.isInteger(s0) || !Number.isInteger(e0) || s0 < 0 || e0 > n || s0 > e0) {
        throw new ShapeError(`slice: range [${starts[i]}, ${ends?.[i] ?? n}) out of bounds for dim ${i} of size ${n} in ${fmtShape(this.shape)}`);
      }
      shape[i] = e0 - s0;
      off += s0 * this.strides[i]!;
      from.push(s0);
    }
    return recorded(this, this.derive(shape, this.strides, off), () => ({ kind: 'slice', starts: from, from: this.shape }));
  }

  /** One index range along one axis. */
  narrow(axis: number, start: number, length: number): Tensor {
    const a = normAxis(axis, this.rank, 'narrow');
    const starts = new Array<number>(a + 1).fill(0);
    const ends: (number | undefined)[] = new Array(a + 1).fill(undefined);
    starts[a] = start;
    ends[a] = start + length;
    return this.slice(starts, ends);
  }

  /** A broadcast view (stride 0 on repeated dims). */
  broadcastTo(shape: readonly number[]): Tensor {
    const target = broadcastShapes('broadcastTo', this.shape, shape);
    if (target.length !== shape.length || target.some((d, i) => d !== shape[i])) {
      throw new ShapeError(`broadcastTo: cannot broadcast ${fmtShape(this.shape)} to ${fmtShape(shape)}`);
    }
    return recorded(this, this.derive(target, broadcastStrides(this.shape, this.strides, target), this.offset), () => ({ kind: 'broadcast', from: this.shape }));
  }

  unsqueeze(axis: number): Tensor {
    const a = normAxis(axis, this.rank + 1, 'unsqueeze');
    const shape = [...this.shape];
    const strides = [...this.strides];
    shape.splice(a, 0, 1);
    strides.splice(a, 0, a < this.rank ? this.strides[a]! * this.shape[a]! : 1);
    return recorded(this, this.derive(shape, strides, this.offset), () => ({ kind: 'reshape', from: this.shape }));
  }

  squeeze(axis?: number): Tensor {
    const drop = axis === undefined
      ? this.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)
      : [normAxis(axis, this.rank, 'squeeze')];
    for (const i of drop) {
      if (this.shape[i] !== 1) throw new ShapeError(`squeeze: dim ${i} of ${fmtShape(this.shape)} has size ${this.shape[i]}, not 1`);
    }
    const out = this.derive(this.shape.filter((_, i) => !drop.includes(i)), this.strides.filter((_, i) => !drop.includes(i)), this.offset);
    return recorded(this, out, () => ({ kind: 'reshape', from: this.shape }));
  }

  // ---- copies ----

  /** A contiguous copy (always a new buffer; the caller owns it). */
  contiguous(): Tensor {
    return dispatch({ op: 'copy' }, [this], [{ shape: this.shape, dtype: this.dtype }])[0]!;
  }

  /** A converted copy. */
  cast(dtype: DType): Tensor {
    return dispatch({ op: 'copy' }, [this], [{ shape: this.shape, dtype }])[0]!;
  }

  /** A contiguous copy of this tensor on another backend. */
  async to(backend: Backend): Promise<Tensor> {
    const c = this.isContiguous ? this : this.contiguous();
    const s = c.live('to');
    const bytes = await s.backend.read(s.buffer, 0, byteSize(this.dtype, this.size));
    if (c !== this) c.dispose();
    return Tensor.fromBytes(bytes, this.shape, this.dtype, backend);
  }

  // ---- reads ----

  /** Raw contiguous little-endian bytes. */
  async bytes(): Promise<Uint8Array> {
    const c = this.isContiguous ? this : this.contiguous();
    const s = c.live('bytes');
    try {
      return await s.backend.read(s.buffer, 0, byteSize(this.dtype, this.size));
    } finally {
      if (c !== this) c.dispose();
    }
  }

  bytesSync(): Uint8Array {
    const c = this.isContiguous ? this : this.contiguous();
    const s = c.live('bytesSync');
    try {
      return s.backend.readSync(s.buffer, 0, byteSize(this.dtype, this.size));
    } finally {
      if (c !== this) c.dispose();
    }
  }

  async data(): Promise<TensorData> {
    return decode(await this.bytes(), this.dtype, this.size);
  }

  /** Synchronous read; CPU backends only. */
  dataSync(): TensorData {
    return decode(this.bytesSync(), this.dtype, this.size);
  }

  /** Nested arrays, for printing and tests. */
  toArray(): unknown {
    const d = Array.from(this.dataSync());
    const build = (dim: number, off: number): unknown => {
      if (dim === this.rank) return d[off];
      const n = this.shape[dim]!;
      const inner = numel(this.shape.slice(dim + 1));
      return Array.from({ length: n }, (_, i) => build(dim + 1, off + i * inner));
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ShapeError(`item: tensor ${fmtShape(this.shape)} has ${this.size} elements, not 1`);
    return this.dataSync()[0]!;
  }

  private live(where: string | (() => string)): Storage {
    if (!this.storage) throw new DisposedError(`${typeof where === 'function' ? where() : where} on ${this.dtype}${fmtShape(this.shape)}`);
    return this.storage;
  }
}

function resolveReshape(shape: readonly number[], size: number, from: readonly number[]): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) throw new ShapeError(`reshape: more than one -1 in ${fmtShape(shape)}`);
  if (free >= 0) {
    const known = numel(out.filter((_, i) => i !== free));
    if (known === 0 || size % known !== 0) {
      throw new ShapeError(`reshape: cannot infer -1 in ${fmtShape(shape)} for ${size} elements (from ${fmtShape(from)})`);
    }
    out[free] = size / known;
  }
  assertShape(out, 'reshape');
  if (numel(out) !== size) {
    throw new ShapeError(`reshape: ${fmtShape(from)} (${size} elements) cannot become ${fmtShape(out)} (${numel(out)} elements)`);
  }
  return out;
}

/**
 * Numbers -> little-endian bytes of `dtype`, converting as a cast does. A typed array of the
 * dtype's own kind (token ids in an Int32Array, a mask in a Uint8Array) holds only valid values
 * and is copied as it is.
 */
export function encode(values: ArrayLike<number>, dtype: DType): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'f32': return new Uint8Array(Float32Array.from(values).buffer);
    case 'i32': return new Uint8Array((values instanceof Int32Array ? values.slice() : Int32Array.from(values, (x) => toIntDType(x, 'i32'))).buffer);
    case 'i8': return new Uint8Array((values instanceof Int8Array ? values.slice() : Int8Array.from(values, (x) => toIntDType(x, 'i8'))).buffer);
    case 'u8': return values instanceof Uint8Array ? values.slice() : Uint8Array.from(values, (x) => toIntDType(x, 'u8'));
    case 'f16': return new Uint8Array(Uint16Array.from(values, (x) => f32ToF16Bits(x)).buffer);
    case 'bf16': return new Uint8Array(Uint16Array.from(values, (x) => f32ToBf16Bits(x)).buffer);
    case 'i4': case 'u4': {
      const out = new Uint8Array(byteSize(dtype, n));
      for (let i = 0; i < n; i++) out[i >> 1]! |= (toIntDType(values[i]!, dtype) & 0xf) << ((i & 1) * 4);
      return out;
    }
  }
}

/** Little-endian bytes of `dtype` -> a typed array of `n` values. */
export function decode(bytes: Uint8Array, dtype: DType, n: number): TensorData {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const buf = aligned.buffer;
  const o = aligned.byteOffset;
  switch (dtype) {
    case 'f32': return new Float32Array(buf, o, n).slice();
    case 'i32': return new Int32Array(buf, o, n).slice();
    case 'i8': return new Int8Array(buf, o, n).slice();
    case 'u8': return aligned.slice(0, n);
    case 'f16': { const h = new Uint16Array(buf, o, n); return Float32Array.from(h, f16BitsToF32); }
    case 'bf16': { const h = new Uint16Array(buf, o, n); return Float32Array.from(h, bf16BitsToF32); }
    case 'i4': return Int8Array.from({ length: n }, (_, i) => (((aligned[i >> 1]! >> ((i & 1) * 4)) & 0xf) << 28) >> 28);
    case 'u4': return Uint8Array.from({ length: n }, (_, i) => (aligned[i >> 1]! >> ((i & 1) * 4)) & 0xf);
  }
}

export function assertFloat(t: Tensor, where: string): void {
  if (!(t.dtype === 'f32' || t.dtype === 'f16' || t.dtype === 'bf16')) {
    throw new DTypeError(`${where}: expected a float tensor, got ${t.dtype}${fmtShape(t.shape)}`);
  }
}

export { isPacked };
