// Reading an activation store back: the manifest, and batches of rows of one hook (or of the
// token ids), sequential or shuffled, every row exactly once per pass.
// Rows: with flatten 'contexts' a row is one context's activation ([context, d_model] for a
// residual hook); with flatten 'tokens' it is one position's ([d_model]; for attention patterns,
// a query position's [head, key_pos]; for 'tokens', the id itself).
// Shuffling is seeded: shards are taken in a shuffled order, `bufferShards` at a time, and the rows
// of those shards are shuffled together, so memory stays at a few shards.
// Only shards the manifest lists are read, so a shard being written (or never recorded) is never seen.
// Not for: writing (writer.ts).
import type { Backend } from '../tensor/backend.js';
import type { FileStore } from '../io/file-store.js';
import { getPlatform } from '../io/platform.js';
import { positionAxis } from '../hooks/run.js';
import { Rng } from '../ops/creation.js';
import { SafetensorsFile } from '../formats/safetensors.js';
import { getBackend } from '../tensor/engine.js';
import { byteSize, type DType } from '../tensor/dtype.js';
import { numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { readManifest, type ShardEntry, type StoreManifest } from './manifest.js';
import { sha256File } from './shard.js';

export type Flatten = 'tokens' | 'contexts';

export interface BatchOptions {
  /** A stored hook name, or 'tokens' for the token ids. */
  hook: string;
  batchSize: number;
  /** Default false: shards in order, rows in order. */
  shuffle?: boolean;
  seed?: number;
  /** Default 'tokens'. */
  flatten?: Flatten;
  /** Default: the default backend. */
  backend?: Backend;
  /** Cast each batch to this dtype (default: as stored). */
  dtype?: DType;
  /** Shards shuffled together (default 4). */
  bufferShards?: number;
  /** Check each shard's SHA-256 before using it. */
  verify?: boolean;
  /** Leave out a last batch smaller than batchSize. */
  dropLast?: boolean;
}

interface Layout {
  dtype: DType;
  /** Per-context shape. */
  shape: number[];
  rowShape: number[];
  /** Rows per context. */
  perContext: number;
  /** Elements before / after the position axis within a context (tokens mode). */
  outer: number;
  inner: number;
  contiguous: boolean;
}

export class ActivationStore {
  private constructor(readonly dir: string, readonly manifest: StoreManifest, private readonly store: FileStore) {}

  static async open(dir: string, o: { store?: FileStore } = {}): Promise<ActivationStore> {
    const store = o.store ?? (await getPlatform()).store;
    return new ActivationStore(dir, await readManifest(store, dir), store);
  }

  get shards(): readonly ShardEntry[] {
    return this.manifest.shards;
  }
  get tokenCount(): number {
    return this.manifest.tokenCount;
  }
  get contexts(): number {
    return this.manifest.contexts;
  }
  /** The stored hook names ('tokens' is always there too). */
  get hooks(): string[] {
    return Object.keys(this.manifest.hooks);
  }

  /** The shape of one row of `hook`. */
  rowShape(hook: string, flatten: Flatten = 'tokens'): number[] {
    return this.layout(hook, flatten).rowShape;
  }

  /** Rows of one pass. */
  rowCount(hook: string, flatten: Flatten = 'tokens'): number {
    return this.contexts * this.layout(hook, flatten).perContext;
  }

  private layout(hook: string, flatten: Flatten): Layout {
    const m = this.manifest;
    let dtype: DType;
    let shape: number[];
    let axis: number | null;
    if (hook === 'tokens') {
      dtype = 'i32';
      shape = [m.context];
      axis = 0;
    } else {
      const e = m.hooks[hook];
      if (!e) throw new Error(`${this.dir}: no hook '${hook}' in this store (it has ${['tokens', ...this.hooks].join(', ')})`);
      dtype = e.dtype;
      shape = e.shape;
      const a = positionAxis(hook);
      axis = a === null ? null : a - 1;
    }
    if (flatten === 'contexts') return { dtype, shape, rowShape: shape, perContext: 1, outer: 1, inner: numel(shape), contiguous: true };
    if (axis === null || shape[axis] !== m.context) throw new Error(`${this.dir}: hook '${hook}' [${shape.join(', ')}] has no position axis; read it with flatten: 'contexts'`);
    return {
      dtype, shape, rowShape: shape.filter((_, i) => i !== axis), perContext: m.context,
      outer: numel(shape.slice(0, axis)), inner: numel(shape.slice(axis + 1)), contiguous: axis === 0,
    };
  }

  /** The bytes of `hook` in shard `i` (all its contexts), after checking size (and SHA-256 with `verify`). */
  async readShard(i: number, hook: string, o: { verify?: boolean } = {}): Promise<Uint8Array> {
    const s = this.manifest.shards[i];
    if (!s) throw new RangeError(`${this.dir}: shard ${i} out of range (${this.manifest.shards.length} shards)`);
    const path = this.store.join(this.dir, s.file);
    const st = await this.store.stat(path);
    if (!st) throw new Error(`${path}: listed in the manifest but missing`);
    if (st.size !== s.bytes) throw new Error(`${path}: ${st.size} bytes, the manifest says ${s.bytes}; the store is damaged`);
    if (o.verify) {
      const sum = await sha256File(this.store, path, (await getPlatform()).sha256());
      if (sum !== s.sha256) throw new Error(`${path}: SHA-256 ${sum} differs from the manifest's ${s.sha256}; the store is damaged`);
    }
    const f = await SafetensorsFile.open(await this.store.openRead(path));
    try {
      return await f.readBytes(hook);
    } finally {
      await f.close();
    }
  }

  /** Checks every shard's size and SHA-256; returns the problems found (empty: all good). */
  async verify(): Promise<string[]> {
    const problems: string[] = [];
    const sha = (await getPlatform()).sha256;
    for (const s of this.manifest.shards) {
      const path = this.store.join(this.dir, s.file);
      const st = await this.store.stat(path);
      if (!st) problems.push(`${s.file}: missing`);
      else if (st.size !== s.bytes) problems.push(`${s.file}: ${st.size} bytes, expected ${s.bytes}`);
      else if ((await sha256File(this.store, path, sha())) !== s.sha256) problems.push(`${s.file}: SHA-256 mismatch`);
    }
    return problems;
  }

  /**
   * Batches [batch, ...row] of `hook` over the whole store, each row exactly once; the last batch
   * may be smaller (unless dropLast). The caller owns (and disposes) each tensor.
   */
  async *batches(o: BatchOptions): AsyncGenerator<Tensor> {
    const flatten = o.flatten ?? 'tokens';
    const L = this.layout(o.hook, flatten);
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${o.batchSize}`);
    const backend = o.backend ?? getBackend();
    const el = byteSize(L.dtype, 1);
    const rowBytes = byteSize(L.dtype, numel(L.rowShape));
    const ctxElems = numel(L.shape);
    const P = this.manifest.context;
    let buf = new Uint8Array(o.batchSize * rowBytes);
    let count = 0;
    const copyRow = (data: Uint8Array, row: number) => {
      const dst = count * rowBytes;
      if (L.contiguous) {
        buf.set(data.subarray(row * rowBytes, (row + 1) * rowBytes), dst);
      } else {
        const c = Math.floor(row / P);
        const t = row % P;
        const innerBytes = L.inner * el;
        for (let k = 0; k < L.outer; k++) {
          const src = (c * ctxElems + (k * P + t) * L.inner) * el;
          buf.set(data.subarray(src, src + innerBytes), dst + k * innerBytes);
        }
      }
      count++;
    };
    const emit = (): Tensor => {
      const bytes = count === o.batchSize ? buf : buf.slice(0, count * rowBytes);
      const t = Tensor.fromBytes(bytes, [count, ...L.rowShape], L.dtype, backend);
      buf = new Uint8Array(o.batchSize * rowBytes);
      count = 0;
      if (!o.dtype || o.dtype === L.dtype) return t;
      const c = t.cast(o.dtype);
      t.dispose();
      return c;
    };
    const shards = this.manifest.shards.map((_, i) => i);
    if (!o.shuffle) {
      for (const i of shards) {
        const data = await this.readShard(i, o.hook, o);
        const rows = this.manifest.shards[i]!.contexts * L.perContext;
        for (let r = 0; r < rows; r++) {
          copyRow(data, r);
          if (count === o.batchSize) yield emit();
        }
      }
    } else {
      const rng = new Rng(o.seed ?? 0);
      shuffleInPlace(shards, rng);
      const group = Math.max(1, o.bufferShards ?? 4);
      for (let g = 0; g < shards.length; g += group) {
        const ids = shards.slice(g, g + group);
        const datas: Uint8Array[] = [];
        for (const i of ids) datas.push(await this.readShard(i, o.hook, o));
        const counts = ids.map((i) => this.manifest.shards[i]!.contexts * L.perContext);
        const total = counts.reduce((s, x) => s + x, 0);
        const slot = new Int32Array(total);
        const row = new Int32Array(total);
        let k = 0;
        counts.forEach((n, s) => { for (let r = 0; r < n; r++, k++) { slot[k] = s; row[k] = r; } });
        for (let j = total - 1; j > 0; j--) {
          const x = rng.int(j + 1);
          [slot[j], slot[x]] = [slot[x]!, slot[j]!];
          [row[j], row[x]] = [row[x]!, row[j]!];
        }
        for (let j = 0; j < total; j++) {
          copyRow(datas[slot[j]!]!, row[j]!);
          if (count === o.batchSize) yield emit();
        }
      }
    }
    if (count > 0 && !o.dropLast) yield emit();
  }
}

function shuffleInPlace<T>(a: T[], rng: Rng): void {
  for (let j = a.length - 1; j > 0; j--) {
    const x = rng.int(j + 1);
    [a[j], a[x]] = [a[x]!, a[j]!];
  }
}
