// evaluateLM (actlab eval): perplexity from the second half of each chunk, KL(ref ‖ model) and
// top-1 agreement, checked against a hand computation on a small random model; a model against
// itself gives KL 0 and full agreement; bad input is refused with the reason.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { evaluateLM } from '../src/models/evaluate.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';

const CFG = { model_type: 'llama', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, vocab_size: 40, max_position_embeddings: 64 };
let a: CausalLM;
let b: CausalLM;
beforeAll(async () => {
  const js = await al.initBackend('js');
  a = randomModel(CFG, js, { seed: 1, std: 0.3 });
  b = randomModel(CFG, js, { seed: 2, std: 0.3 });
});
afterAll(() => { a.dispose(); b.dispose(); al.disposeBackends(); });

const ids = Array.from({ length: 40 }, (_, i) => (i * 7 + 3) % 40);

function hand(model: CausalLM, ref: CausalLM, chunk: number[]): { nll: number; kl: number; agree: number; n: number } {
  const lp = (m: CausalLM) => al.tidy(() => al.logSoftmax(m.forward(al.tensor(chunk, [1, chunk.length], 'i32'))).dataSync() as Float32Array);
  const [p, r] = [lp(model), lp(ref)];
  const V = CFG.vocab_size;
  let nll = 0, kl = 0, agree = 0, n = 0;
  for (let i = chunk.length / 2; i < chunk.length - 1; i++) {
    nll -= p[i * V + chunk[i + 1]!]!;
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(r[i * V + v]!) * (r[i * V + v]! - p[i * V + v]!);
    kl += s;
    const am = (x: Float32Array) => { let k = 0; for (let v = 1; v < V; v++) if (x[i * V + v]! > x[i * V + k]!) k = v; return k; };
    if (am(p) === am(r)) agree++;
    n++;
  }
  return { nll, kl, agree, n };
}

describe('evaluateLM', () => {
  it('perplexity, KL and top-1 equal a hand computation over the second half of each chunk', () => {
    const r = evaluateLM(a, ids, { ctx: 16, ref: b });
    expect(r.chunks).toBe(2); // 40 tokens -> 2 whole chunks of 16
    const h = [hand(a, b, ids.slice(0, 16)), hand(a, b, ids.slice(16, 32))];
    const n = h[0]!.n + h[1]!.n;
    expect(r.scored).toBe(n);
    expect(r.nll).toBeCloseTo((h[0]!.nll + h[1]!.nll) / n, 5);
    expect(r.perplexity).toBeCloseTo(Math.exp((h[0]!.nll + h[1]!.nll) / n), 4);
    expect(r.kl!).toBeCloseTo((h[0]!.kl + h[1]!.kl) / n, 5);
    expect(r.top1!).toBeCloseTo((h[0]!.agree + h[1]!.agree) / n, 10);
    expect(r.kl!).toBeGreaterThan(0);
    expect(r.tokensPerSecond).toBeGreaterThan(0);
  });

  it('a model against itself: KL 0, full agreement, the same perplexity', () => {
    const r = evaluateLM(a, ids, { ctx: 20, ref: a });
    expect(r.kl!).toBeLessThan(1e-6);
    expect(r.top1).toBe(1);
    expect(r.refPerplexity).toBeCloseTo(r.perplexity, 6);
  });

  it('refuses too little text, a context beyond the model\'s, and vocabularies that differ', () => {
    expect(() => evaluateLM(a, ids.slice(0, 10), { ctx: 16 })).toThrow(/10 tokens do not fill one chunk of 16/);
    expect(() => evaluateLM(a, ids, { ctx: 128 })).toThrow(/ctx 128 exceeds the model's context of 64/);
    const c = randomModel({ ...CFG, vocab_size: 48 }, a.backend, { seed: 3 });
    expect(() => evaluateLM(a, ids, { ctx: 16, ref: c })).toThrow(/vocabulary \(48\) differs from the model's \(40\)/);
    c.dispose();
  });
});
