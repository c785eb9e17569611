// Where SAE training batches come from: an activation store (streamed, shuffled, one epoch after
// another with a new seed each), or rows already in memory (tests, benchmarks, planted data).
// Each batch is a host array [rows, d_in] (and, for transcoders, the target [rows, d_out]).
// Not for: reading stores in general (src/store/reader.ts).
import { Rng } from '../ops/creation.js';
import type { ActivationStore } from '../store/reader.js';
import { getBackend } from '../tensor/engine.js';
import { fmtShape } from '../tensor/shape.js';

export interface SaeBatch {
  x: Float32Array; // [rows, d_in]
  target?: Float32Array; // [rows, d_out]
  rows: number;
}

export interface SaeDataSource {
  readonly dIn: number;
  readonly dOut: number;
  /** The next full batch (sources loop over epochs forever). */
  next(): Promise<SaeBatch>;
}

export interface StoreSourceOptions {
  hook: string;
  /** Transcoders: the hook to predict (rows aligned with `hook`'s). */
  targetHook?: string;
  batchSize: number;
  seed?: number;
  /** Shards shuffled together (default 4). */
  bufferShards?: number;
  /** Backend the store's batches pass through (default: the default backend). */
  backend?: import('../tensor/backend.js').Backend;
}

function vectorWidth(store: ActivationStore, hook: string): number {
  const shape = store.rowShape(hook); // throws naming the hooks the store has
  if (shape.length !== 1) throw new Error(`${store.dir}: hook '${hook}' has rows ${fmtShape(shape)}; an SAE needs vectors (a [batch, pos, d] hook)`);
  return shape[0]!;
}

/** Shuffled batches of `hook` (and `targetHook`) from a store; epoch e is shuffled with seed + e. */
export function storeSource(store: ActivationStore, o: StoreSourceOptions): SaeDataSource {
  const dIn = vectorWidth(store, o.hook);
  const dOut = o.targetHook ? vectorWidth(store, o.targetHook) : dIn;
  const rows = store.rowCount(o.hook);
  if (rows < o.batchSize) throw new Error(`${store.dir}: ${rows} rows of '${o.hook}', fewer than one batch of ${o.batchSize}`);
  const backend = o.backend ?? getBackend();
  let epoch = 0;
  let xs: AsyncGenerator<import('../tensor/tensor.js').Tensor> | null = null;
  let ts: AsyncGenerator<import('../tensor/tensor.js').Tensor> | null = null;
  const open = () => {
    const common = { batchSize: o.batchSize, shuffle: true, seed: (o.seed ?? 0) + epoch, dropLast: true, dtype: 'f32' as const, backend, bufferShards: o.bufferShards };
    xs = store.batches({ hook: o.hook, ...common });
    ts = o.targetHook ? store.batches({ hook: o.targetHook, ...common }) : null;
  };
  const take = async (g: AsyncGenerator<import('../tensor/tensor.js').Tensor>): Promise<Float32Array | null> => {
    const r = await g.next();
    if (r.done) return null;
    try {
      return r.value.dataSync() as Float32Array;
    } finally {
      r.value.dispose();
    }
  };
  return {
    dIn, dOut,
    async next() {
      for (let tries = 0; tries < 2; tries++) {
        if (!xs) open();
        const x = await take(xs!);
        if (x) {
          const target = ts ? (await take(ts)) ?? undefined : undefined;
          return { x, target, rows: o.batchSize };
        }
        epoch++;
        xs = null;
      }
      throw new Error(`${store.dir}: no batch of ${o.batchSize} rows could be read`);
    },
  };
}

/** Shuffled batches of rows held in memory (each epoch a new permutation from `seed`). */
export function arraySource(x: Float32Array, d: number, o: { batchSize: number; seed?: number; target?: Float32Array; dOut?: number }): SaeDataSource {
  const rows = x.length / d;
  const dOut = o.dOut ?? d;
  if (!Number.isInteger(rows)) throw new Error(`arraySource: ${x.length} values are not whole rows of ${d}`);
  if (rows < o.batchSize) throw new Error(`arraySource: ${rows} rows, fewer than one batch of ${o.batchSize}`);
  const rng = new Rng(o.seed ?? 0);
  let perm = new Int32Array(0);
  let at = rows;
  return {
    dIn: d, dOut,
    async next() {
      if (at + o.batchSize > rows) {
        perm = Int32Array.from({ length: rows }, (_, i) => i);
        for (let j = rows - 1; j > 0; j--) { const k = rng.int(j + 1); const t = perm[j]!; perm[j] = perm[k]!; perm[k] = t; }
        at = 0;
      }
      const bx = new Float32Array(o.batchSize * d);
      const bt = o.target ? new Float32Array(o.batchSize * dOut) : undefined;
      for (let r = 0; r < o.batchSize; r++) {
        const i = perm[at + r]!;
        bx.set(x.subarray(i * d, (i + 1) * d), r * d);
        if (bt) bt.set(o.target!.subarray(i * dOut, (i + 1) * dOut), r * dOut);
      }
      at += o.batchSize;
      return { x: bx, target: bt, rows: o.batchSize };
    },
  };
}
