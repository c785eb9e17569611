// Several weight files seen as one WeightSource (sharded safetensors: model.safetensors.index.json
// maps each tensor name to its shard).
import type { Backend } from '../tensor/backend.js';
import type { Tensor } from '../tensor/tensor.js';
import { missingTensor, type LoadOptions, type WeightInfo, type WeightSource } from './weight-source.js';

export class ShardedWeights implements WeightSource {
  private owner = new Map<string, WeightSource>();

  /** `parts` in shard order; a name found in two shards is an error naming both. */
  constructor(readonly parts: readonly { name: string; weights: WeightSource }[], readonly source = 'sharded checkpoint') {
    const from = new Map<string, string>();
    for (const p of parts) {
      for (const n of p.weights.names()) {
        if (this.owner.has(n)) throw new Error(`${source}: tensor '${n}' is in both ${from.get(n)} and ${p.name}`);
        this.owner.set(n, p.weights);
        from.set(n, p.name);
      }
    }
  }

  names(): string[] {
    return [...this.owner.keys()];
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  private part(name: string): WeightSource {
    return this.owner.get(name) ?? missingTensor(this.source, name, this.names());
  }

  info(name: string): WeightInfo {
    return this.part(name).info(name);
  }

  load(name: string, backend: Backend, opts?: LoadOptions): Promise<Tensor> {
    return this.part(name).load(name, backend, opts);
  }

  totalBytes(): number {
    return this.parts.reduce((s, p) => s + p.weights.totalBytes(), 0);
  }

  async close(): Promise<void> {
    for (const p of this.parts) await p.weights.close();
  }
}
