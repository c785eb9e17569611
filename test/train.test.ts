// Training: AdamW/SGD against hand computations of PyTorch's formulas, the schedule, clipping,
// tiny GPT-2 and Llama models overfitting a tiny batch, exact resume, the NaN stop, and refusal
// of a checkpoint from another config.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import { MemoryStore } from '../src/io/memory-store.js';
import { AdamW, Sgd, defaultGroups } from '../src/train/optim.js';
import { warmupCosine } from '../src/train/schedule.js';
import { clipGradNorm } from '../src/train/clip.js';
import { crossEntropy } from '../src/train/loss.js';
import { train, TrainingStoppedError, type StepInfo } from '../src/train/trainer.js';
import { CheckpointMismatchError } from '../src/train/checkpoint.js';
import { noGrad } from '../src/autograd/index.js';
import { TINY } from './helpers/tiny-configs.js';

let backend: al.Backend;
beforeAll(async () => { backend = await al.initBackend('js'); });
const arr = (t: al.Tensor) => Array.from(t.dataSync() as Float32Array);

describe('optimizers', () => {
  it('AdamW equals PyTorch\'s formula (decoupled decay, bias correction, eps outside the sqrt)', () => {
    const w0 = [0.5, -1.5, 2, 0.25, -0.75, 1];
    const b0 = [0.1, -0.2, 0.3];
    const params = new Map([['w', al.tensor(w0, [2, 3])], ['b', al.tensor(b0, [3])]]);
    const opt = new AdamW(params, defaultGroups(params, 0.1), { betas: [0.9, 0.95], eps: 1e-6 });
    const ref = { w: [...w0], b: [...b0] };
    const m = { w: new Array(6).fill(0), b: new Array(3).fill(0) };
    const v = { w: new Array(6).fill(0), b: new Array(3).fill(0) };
    const lrs = [1e-2, 5e-3, 2e-2];
    for (let t = 1; t <= 3; t++) {
      const gw = w0.map((_, i) => Math.sin(i + t));
      const gb = b0.map((_, i) => Math.cos(i * t));
      al.tidy(() => opt.update(new Map([['w', al.tensor(gw, [2, 3])], ['b', al.tensor(gb, [3])]]), lrs[t - 1]!));
      const lr = lrs[t - 1]!;
      for (const [k, g, wd] of [['w', gw, 0.1], ['b', gb, 0]] as const) {
        for (let i = 0; i < g.length; i++) {
          ref[k][i] *= 1 - lr * wd;
          m[k][i] = 0.9 * m[k][i] + 0.1 * g[i]!;
          v[k][i] = 0.95 * v[k][i] + 0.05 * g[i]! * g[i]!;
          const denom = Math.sqrt(v[k][i]) / Math.sqrt(1 - 0.95 ** t) + 1e-6;
          ref[k][i] -= (lr / (1 - 0.9 ** t)) * (m[k][i] / denom);
        }
      }
    }
    arr(params.get('w')!).forEach((x, i) => expect(x).toBeCloseTo(ref.w[i]!, 6));
    arr(params.get('b')!).forEach((x, i) => expect(x).toBeCloseTo(ref.b[i]!, 6));
    expect(opt.groupOf('w')).toBe('decay');
    expect(opt.groupOf('b')).toBe('no_decay');
    opt.dispose();
  });

  it('SGD with momentum equals PyTorch\'s formula', () => {
    const p = al.tensor([1, 2]);
    const params = new Map([['p', p]]);
    const opt = new Sgd(params, [{ name: 'all', params: ['p'], weightDecay: 0 }], { momentum: 0.9 });
    let ref = [1, 2];
    let buf = [0, 0];
    for (let t = 1; t <= 3; t++) {
      const g = [t, -t];
      al.tidy(() => opt.update(new Map([['p', al.tensor(g)]]), 0.1));
      buf = t === 1 ? g : buf.map((b, i) => 0.9 * b + g[i]!);
      ref = ref.map((x, i) => x - 0.1 * buf[i]!);
    }
    arr(p).forEach((x, i) => expect(x).toBeCloseTo(ref[i]!, 6));
    opt.dispose();
  });
});

describe('schedule and clipping', () => {
  it('linear warmup, then cosine reaching the minimum at totalSteps', () => {
    const f = warmupCosine({ lr: 1, warmupSteps: 4, totalSteps: 14, minLr: 0.1 });
    expect([0, 1, 2, 3].map(f)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(f(4)).toBeCloseTo(1, 12);
    expect(f(8)).toBeCloseTo(0.1 + 0.45 * (1 + Math.cos((Math.PI * 4) / 10)), 12);
    expect(f(13)).toBeCloseTo(0.1 + 0.45 * (1 + Math.cos((Math.PI * 9) / 10)), 12);
    expect(f(14)).toBeCloseTo(0.1, 12);
    expect(f(100)).toBeCloseTo(0.1, 12);
  });

  it('clips by the global norm', () => {
    al.tidy(() => {
      const grads = new Map([['a', al.tensor([3, 0])], ['b', al.tensor([0, 4])]]);
      const { norm, grads: out } = clipGradNorm(grads, 1);
      expect(norm).toBeCloseTo(5, 6);
      expect(arr(out.get('a')!)[0]).toBeCloseTo(0.6, 5);
      expect(arr(out.get('b')!)[1]).toBeCloseTo(0.8, 5);
      const same = new Map([['a', al.tensor([0.3])]]);
      expect(clipGradNorm(same, 1).grads.get('a')).toBe(same.get('a'));
    });
  });

  it('cross-entropy equals the mean NLL, ignoring -100', () => {
    al.tidy(() => {
      const logits = al.tensor([1, 2, 3, 0, 0, 0, 5, 1, 1], [1, 3, 3]);
      const l = crossEntropy(logits, al.tensor([2, 0, -100], [1, 3], 'i32')).item();
      const lse = (xs: number[]) => Math.log(xs.reduce((s, x) => s + Math.exp(x), 0));
      expect(l).toBeCloseTo(((lse([1, 2, 3]) - 3) + lse([0, 0, 0])) / 2, 5);
    });
  });
});

function tinyData(n: number, len: number, vocab: number, seed = 1): Int32Array[] {
  const rng = new al.Rng(seed);
  return Array.from({ length: n }, () => Int32Array.from({ length: len }, () => rng.int(vocab)));
}

describe('training loop', () => {
  for (const arch of ['gpt2', 'llama']) {
    it(`a tiny random ${arch} overfits a tiny batch`, async () => {
      const model = randomModel(TINY[arch]!, backend, { seed: 5, std: 0.1 });
      const data = tinyData(4, 13, 61);
      const losses: number[] = [];
      await train(model, data, { steps: 40, batchSize: 4, lr: 1e-2, warmupSteps: 5, clip: 1, onStep: (s) => losses.push(s.loss) });
      console.log(`${arch}: loss ${losses[0]!.toFixed(3)} -> ${losses.at(-1)!.toFixed(3)}`);
      expect(losses[0]).toBeGreaterThan(3.5);
      expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.25);
      expect(al.tapeStats().nodes).toBe(0);
      model.dispose();
    }, 120_000);
  }

  const weights = async (m: al.CausalLM) => [...m.parameters()].map(([n, t]) => [n, Array.from(new Uint8Array(t.bytesSync()))] as const);

  it('N steps straight equal N/2, save, resume, N/2 bit for bit (accumulation, clipping, AdamW)', async () => {
    const data = tinyData(5, 9, 61, 3);
    const opts = { steps: 6, batchSize: 2, gradAccum: 2, lr: 3e-3, warmupSteps: 2, clip: 0.5, seed: 11, weightDecay: 0.1 };
    const a = randomModel(TINY.gpt2!, backend, { seed: 9 });
    const storeA = new MemoryStore();
    await train(a, data, { ...opts, outDir: 'a', store: storeA });
    const b = randomModel(TINY.gpt2!, backend, { seed: 9 });
    const store = new MemoryStore();
    const r1 = await train(b, data, { ...opts, untilStep: 3, outDir: 'b', store });
    expect(r1.checkpoint).toBe('b/checkpoint-3');
    b.dispose();
    const c = randomModel(TINY.gpt2!, backend, { seed: 9 }); // fresh weights: all state comes from the checkpoint
    const r2 = await train(c, data, { ...opts, resume: true, outDir: 'b', store });
    expect(r2.step).toBe(6);
    expect(await weights(c)).toEqual(await weights(a));
    for (const f of ['model.safetensors', 'config.json', 'optimizer.safetensors', 'trainer_state.json']) {
      expect(await store.stat(`b/checkpoint-6/${f}`)).not.toBeNull();
    }
    const log = new TextDecoder().decode(await store.readBytes('b/train_log.jsonl')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const k of ['loss', 'lr', 'grad_norm', 'ms', 'tokens']) expect(typeof log[0][k]).toBe('number');
    const logA = new TextDecoder().decode(await storeA.readBytes('a/train_log.jsonl')).trim().split('\n').map((l) => JSON.parse(l));
    expect(log.map((l) => l.loss)).toEqual(logA.map((l) => l.loss));
    const cfg = JSON.parse(new TextDecoder().decode(await store.readBytes('b/checkpoint-6/config.json')));
    expect(cfg.n_embd).toBe(24);
    const st = await al.SafetensorsFile.open(await store.openRead('b/checkpoint-6/model.safetensors'));
    expect(st.names()).toContain('h.0.attn.c_attn.weight');
    a.dispose();
    c.dispose();
  }, 120_000);

  it('a NaN loss stops training naming the step and parameter group, keeping the last good checkpoint', async () => {
    const data = tinyData(4, 9, 61, 4);
    const model = randomModel(TINY.gpt2!, backend, { seed: 2 });
    const store = new MemoryStore();
    const poison = (s: StepInfo) => {
      if (s.step !== 3) return;
      const p = model.parameters().get('h.1.ln_2.weight')!;
      noGrad(() => al.tidy(() => al.assign(p, al.full(p.shape, NaN))));
    };
    const err = await train(model, data, { steps: 8, batchSize: 2, lr: 1e-3, checkpointEvery: 2, outDir: 'run', store, onStep: poison }).catch((e) => e);
    expect(err).toBeInstanceOf(TrainingStoppedError);
    expect(err.step).toBe(4);
    expect(err.group).toBe('no_decay');
    expect(err.param).toBe('h.1.ln_2.weight');
    expect(err.message).toMatch(/step 4.*loss is NaN.*group 'no_decay'.*run\/checkpoint-2/);
    expect(await store.stat('run/checkpoint-2/trainer_state.json')).not.toBeNull();
    expect(await store.stat('run/checkpoint-4/trainer_state.json')).toBeNull();
    // The kept checkpoint is good: resuming from it trains on.
    const fresh = randomModel(TINY.gpt2!, backend, { seed: 2 });
    const r = await train(fresh, data, { steps: 8, batchSize: 2, lr: 1e-3, checkpointEvery: 2, outDir: 'run', store, resume: true });
    expect(r.step).toBe(8);
    expect(Number.isFinite(r.loss)).toBe(true);
    model.dispose();
    fresh.dispose();
  }, 120_000);

  it('refuses a checkpoint from another config', async () => {
    const data = tinyData(4, 9, 61, 5);
    const store = new MemoryStore();
    const m1 = randomModel(TINY.gpt2!, backend, { seed: 1 });
    await train(m1, data, { steps: 2, batchSize: 2, lr: 1e-3, outDir: 'x', store });
    const m2 = randomModel({ ...TINY.gpt2!, layer_norm_epsilon: 1e-3 }, backend, { seed: 1 });
    const err = await train(m2, data, { steps: 4, batchSize: 2, lr: 1e-3, outDir: 'x', store, resume: true }).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointMismatchError);
    expect(err.message).toMatch(/layer_norm_epsilon/);
    const err2 = await train(m1, data, { steps: 4, batchSize: 3, lr: 1e-3, outDir: 'x', store, resume: true }).catch((e) => e);
    expect(err2).toBeInstanceOf(CheckpointMismatchError);
    expect(err2.message).toMatch(/batch_size=2/);
    m1.dispose();
    m2.dispose();
  }, 60_000);
});
