// actlab's formats on whole models: packed checkpoints written and loaded back kept quantized
// (logits equal to the fake-quantized f32 model), GPT-2's transposed Conv1D weights, the manifest's
// bad input, the mixed-precision allocation against the uniform one, and activation fake
// quantization (calibration methods, per-layer report, hooks on a model, too little calibration).
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { encodeSafetensorsHeader, SafetensorsFile } from '../src/formats/safetensors.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { Rng } from '../src/ops/creation.js';
import { actQuantHooks, actReport, calibrateActivations, calibrateRows } from '../src/quantize/acts.js';
import { checkCalibration } from '../src/quantize/calibrate.js';
import { fakeQuantizeModel } from '../src/quantize/fake.js';
import { allocateBits, measureSensitivity, uniformAt } from '../src/quantize/mixed.js';
import { PACKED_METADATA_KEY, packedManifest } from '../src/quant/packed-weights.js';
import { packTensors, readAllF32, writePackedCheckpoint } from '../src/quantize/write.js';
import { quantizeCommand } from '../src/cli/quantize.js';

const ROOT = new URL('../fixtures/hf/', import.meta.url).pathname;
let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(join(tmpdir(), 'actlab-quant-model-')); await al.initBackend('js'); });
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); al.disposeBackends(); });

const config = (fx: string) => JSON.parse(readFileSync(`${ROOT}${fx}/config.json`, 'utf8')) as Record<string, unknown>;
const ids = (n: number, vocab: number, seed: number) => { const r = new Rng(seed); return Array.from({ length: n }, () => r.int(vocab)); };

async function writePacked(fx: string, type: 'int8' | 'int4_g32' | 'nf4'): Promise<string> {
  const st = await SafetensorsFile.open(await NodeFileSource.open(`${ROOT}${fx}/model.safetensors`));
  const all = await readAllF32(st, al.getBackend());
  await st.close();
  const report = packTensors(all, config(fx), { choose: () => type });
  const dir = join(tmp, `${fx}-${type}`);
  await writePackedCheckpoint(new NodeFileStore(), dir, config(fx), report);
  return dir;
}

describe('packed checkpoints', () => {
  for (const [fx, type] of [['llama3', 'int4_g32'], ['gpt2', 'int8'], ['qwen2', 'nf4']] as const) {
    it(`${fx} in ${type}: loads kept quantized, logits equal the fake-quantized f32 model`, async () => {
      const dir = await writePacked(fx, type);
      const q = await al.loadModel(dir, { backend: 'js' });
      const f = await al.loadModel(`${ROOT}${fx}`, { backend: 'js' });
      const fq = fakeQuantizeModel(f.model, f.config, () => type);
      expect(q.model.weightMemory().quantized).toBeGreaterThan(0);
      expect(Object.keys(fq.applied).length).toBeGreaterThan(0);
      const input = al.tensor(ids(12, Number(f.config.vocab_size), 4), [1, 12], 'i32');
      const a = q.model.forward(input).dataSync();
      const b = f.model.forward(input).dataSync();
      let err = 0, mx = 0;
      for (let i = 0; i < a.length; i++) { err = Math.max(err, Math.abs(a[i]! - b[i]!)); mx = Math.max(mx, Math.abs(b[i]!)); }
      console.log(`${fx} ${type}: packed vs fake-quantized logits max |diff| / max |logit| ${(err / mx).toExponential(2)}; ${q.model.weightMemory().quantized} matrices packed, ${q.model.weightMemory().bytes} bytes (f32 ${f.model.weightMemory().bytes})`);
      expect(err / mx).toBeLessThan(1e-5);
      expect(q.model.weightMemory().bytes).toBeLessThan(f.model.weightMemory().bytes * (type === 'int8' ? 0.5 : 0.4));
      fq.restore();
      const c = f.model.forward(input).dataSync();
      const ref = (await al.loadModel(`${ROOT}${fx}`, { backend: 'js' }));
      expect(Array.from(c)).toEqual(Array.from(ref.model.forward(input).dataSync()));
      for (const m of [q, f, ref]) m.model.dispose();
      input.dispose();
    }, 60_000);
  }

  it('refuses a manifest with an unknown format or a wrong byte count, naming the tensor', async () => {
    for (const [manifest, re] of [
      [{ version: 1, tensors: { w: { type: 'int7', shape: [2, 32], transposed: false } } }, /tensor 'w' has unknown type 'int7'/],
      [{ version: 1, tensors: { w: { type: 'int8', shape: [2, 64], transposed: false } } }, /tensor 'w' \(int8 \[2, 64\]\) must be U8 \[2, 68\], the file has U8 \[2, 36\]/],
    ] as const) {
      const { prefix } = encodeSafetensorsHeader('t', [{ name: 'w', dtype: 'u8', shape: [2, 36] }], { [PACKED_METADATA_KEY]: JSON.stringify(manifest) });
      const path = join(tmp, 'bad.safetensors');
      const { writeFileSync } = await import('node:fs');
      writeFileSync(path, Buffer.concat([prefix, new Uint8Array(72)]));
      const st = await SafetensorsFile.open(await NodeFileSource.open(path));
      expect(() => packedManifest(st)).toThrow(re);
      await st.close();
    }
  });

  it('actlab quantize refuses unknown types, indivisible rows on request, mixed without calibration', async () => {
    const out = join(tmp, 'cli');
    await expect(quantizeCommand({ model: `${ROOT}llama3`, type: 'int5', out })).rejects.toThrow(/unknown type 'int5'/);
    await expect(quantizeCommand({ model: `${ROOT}llama3`, type: 'int4_g128', out, onIndivisible: 'error', json: true })).rejects.toThrow(/rows of 64 values are not a whole number of int4_g128 blocks of 128/);
    await expect(quantizeCommand({ model: `${ROOT}llama3`, type: 'mixed:4.5', out, json: true })).rejects.toThrow(/needs calibration text: pass --calib FILE \(at least 128 tokens\)/);
    expect(() => checkCalibration([1, 2, 3], 64, 'the LLM-FP4 search')).toThrow(/gives 3 tokens; it needs at least 64/);
  });
});

describe('mixed precision', () => {
  it('meets the bit budget and predicts no more KL than the uniform allocation at the same budget', async () => {
    const m = await al.loadModel(`${ROOT}llama3`, { backend: 'js' });
    const chunks = [ids(32, Number(m.config.vocab_size), 1), ids(32, Number(m.config.vocab_size), 2)];
    const sens = measureSensitivity(m.model, m.config, chunks);
    expect(sens.length).toBeGreaterThan(5);
    for (const budget of [4.6, 5.5]) {
      const mix = allocateBits(sens, budget);
      const uni = uniformAt(sens, budget);
      console.log(`budget ${budget}: mixed ${mix.bitsPerWeight.toFixed(3)} bpw predicted KL ${mix.predictedKl.toExponential(3)}; uniform ${Object.values(uni.types)[0]} ${uni.bitsPerWeight.toFixed(3)} bpw ${uni.predictedKl.toExponential(3)}`);
      expect(mix.bitsPerWeight).toBeLessThanOrEqual(budget + 1e-9);
      expect(mix.predictedKl).toBeLessThanOrEqual(uni.predictedKl + 1e-12);
    }
    expect(() => allocateBits(sens, 3)).toThrow(/cheapest formats already take 4\.\d+ bits per weight, above the budget of 3/);
    m.model.dispose();
  }, 120_000);
});

describe('activation fake quantization', () => {
  const r = new Rng(9);
  const x = Float32Array.from({ length: 64 * 32 }, (_, i) => r.normal() * (i % 32 === 5 ? 20 : 1)); // channel 5 an outlier

  it('calibrates min-max, percentile and MSE ranges; MSE never does worse than min-max', () => {
    const mm = calibrateRows('h', x, 32, { format: 'int8', granularity: 'tensor', range: 'minmax' });
    const absmax = Math.max(...Array.from(x, Math.abs));
    expect(mm.scale[0]).toBeCloseTo(absmax / 127, 6);
    const pc = calibrateRows('h', x, 32, { format: 'int8', granularity: 'tensor', range: 'percentile', percentile: 99 });
    expect(pc.scale[0]!).toBeLessThan(mm.scale[0]!);
    for (const format of ['int8', 'int4', 'fp8_e4m3', 'fp4'] as const) {
      for (const granularity of ['tensor', 'channel', 'token'] as const) {
        const a = calibrateRows('h', x, 32, { format, granularity, range: 'minmax' });
        const b = calibrateRows('h', x, 32, { format, granularity, range: 'mse' });
        expect(b.nmse).toBeLessThanOrEqual(a.nmse * (1 + 1e-12));
      }
    }
    // per channel beats per tensor when one channel is an outlier; the exponent bias helps FP8
    const chan = calibrateRows('h', x, 32, { format: 'int8', granularity: 'channel', range: 'minmax' });
    expect(chan.nmse).toBeLessThan(mm.nmse);
    const fp = calibrateRows('h', x, 32, { format: 'fp4', granularity: 'tensor', range: 'minmax' });
    const eb = calibrateRows('h', x, 32, { format: 'fp4', granularity: 'tensor', range: 'minmax', expBias: true });
    console.log(`NMSE int8 tensor ${mm.nmse.toExponential(2)}, channel ${chan.nmse.toExponential(2)}; fp4 tensor ${fp.nmse.toExponential(2)}, with exponent bias ${eb.nmse.toExponential(2)}`);
    expect(eb.nmse).toBeLessThan(fp.nmse);
    for (const s of eb.scale) expect(Number.isInteger(Math.log2(s / eb.scale[5]!))).toBe(true); // powers of two times the tensor scale
    expect(() => calibrateRows('h', x, 32, { format: 'fp8_e4m3', granularity: 'token', range: 'minmax', expBias: true })).toThrow(/exponent bias refines a per-tensor scale/);
  });

  it('W8A8 on a model: hooks at the linear inputs, a per-layer report, a small KL; too little calibration is refused', async () => {
    const m = await al.loadModel(`${ROOT}llama3`, { backend: 'js' });
    const V = Number(m.config.vocab_size);
    const hooks = ['blocks.0.ln1.hook_normalized', 'blocks.0.attn.hook_z', 'blocks.0.mlp.hook_post'];
    expect(() => calibrateActivations(m.model, ids(8, V, 3), hooks, { format: 'int8', granularity: 'tensor', range: 'mse' })).toThrow(/8 tokens; it needs at least 32/);
    const input = al.tensor(ids(16, V, 5), [1, 16], 'i32');
    const ref = al.logSoftmax(m.model.forward(input));
    const p = ref.dataSync();
    const klOf = (format: 'int8' | 'int4') => {
      const o = { format, granularity: 'token', range: 'minmax' } as const;
      const cal = calibrateActivations(m.model, ids(64, V, 3), hooks, o);
      const rep = actReport(cal);
      expect(rep.map((x) => x.hook)).toEqual(hooks);
      const got = m.model.withHooks(actQuantHooks(cal, o), () => al.logSoftmax(m.model.forward(input)));
      const q = got.dataSync();
      got.dispose();
      let kl = 0;
      for (let i = 0; i < p.length; i++) kl += Math.exp(p[i]!) * (p[i]! - q[i]!);
      console.log(`llama3 fixture, ${format} per-token activations at ${hooks.length} hooks: mean KL ${(kl / 16).toExponential(2)}; report ${JSON.stringify(rep[0])}`);
      return kl / 16;
    };
    const kl8 = klOf('int8');
    const kl4 = klOf('int4');
    expect(kl8).toBeGreaterThan(0);
    expect(kl8).toBeLessThan(0.05);
    expect(kl4).toBeGreaterThan(10 * kl8);
    for (const t of [input, ref]) t.dispose();
    m.model.dispose();
  }, 60_000);
});

describe('quantization-aware training', () => {
  it('fake-quantizes around each pass, restores the f32 weights, and lowers the quantized loss', async () => {
    const { initToy, modularAdditionConfig, modularAdditionData, evaluate } = await import('../src/organisms/index.js');
    const { qatPass, qatTrain } = await import('../src/quantize/qat.js');
    const config = { ...modularAdditionConfig(23), d_model: 32, d_head: 8, d_mlp: 64 };
    const model = initToy(config, al.getBackend(), 3);
    const { train: tr } = modularAdditionData(23, 0.5, 1);
    const w = model.parameters().get('blocks.0.mlp.W_in')!;
    const orig = Array.from(w.dataSync());
    const pass = qatPass(model, config, 'int4_g32');
    pass.before();
    const during = Array.from(w.dataSync());
    expect(during).not.toEqual(orig);
    expect(new Set(during.slice(0, 32).map((v) => Math.round(v / Math.max(...during.slice(0, 32).map(Math.abs)) * 7))).size).toBeLessThanOrEqual(15);
    pass.after();
    expect(Array.from(w.dataSync())).toEqual(orig);
    const quantLoss = () => { const q = fakeQuantizeModel(model, config, () => 'int4_g32'); const l = evaluate(model, tr, [2]).loss; q.restore(); return l; };
    const before = quantLoss();
    await qatTrain(model, tr, 'int4_g32', { steps: 8, batchSize: tr.length, lr: 3e-3, weightDecay: 0, lossPositions: [2], seed: 1, modelConfig: config });
    const after = quantLoss();
    console.log(`QAT int4_g32, 8 steps: loss of the quantized model ${before.toFixed(4)} -> ${after.toFixed(4)}`);
    expect(after).toBeLessThan(before);
    model.dispose();
  }, 120_000);
});

describe('folds', () => {
  for (const fx of ['llama3', 'gpt2']) {
    it(`${fx}: exponent-bias and scale folds leave the f32 model's logits unchanged; the scale search never raises the error`, async () => {
      const { applyFold, expBiasFactors, foldGroups, searchScaleFold } = await import('../src/quant/fold.js');
      const { collectInputs } = await import('../src/quantize/calibrate.js');
      const st = await SafetensorsFile.open(await NodeFileSource.open(`${ROOT}${fx}/model.safetensors`));
      const all = await readAllF32(st, al.getBackend());
      await st.close();
      const cfg = config(fx);
      const groups = foldGroups([...all.keys()], cfg);
      expect(groups.length).toBe(2 * Number(cfg.num_hidden_layers ?? cfg.n_layer));
      const m = await al.loadModel(`${ROOT}${fx}`, { backend: 'js' });
      const calibIds = ids(64, Number(cfg.vocab_size), 8);
      const acts = collectInputs(m.model, calibIds, groups.map((g) => g.hook));
      for (const [i, g] of groups.entries()) {
        const x = acts.get(g.hook)!;
        const d = all.get(g.norm)!.values.length;
        if (i % 2) {
          applyFold(all, g, expBiasFactors(x, d));
        } else {
          const r = searchScaleFold(all, g, x, () => 'int4_g32');
          expect(r.error).toBeLessThanOrEqual(r.errorUnfolded);
          applyFold(all, g, r.factors);
        }
      }
      const report = packTensors(all, cfg, { choose: () => null });
      const dir = join(tmp, `${fx}-folded`);
      await writePackedCheckpoint(new NodeFileStore(), dir, cfg, report);
      const folded = await al.loadModel(dir, { backend: 'js' });
      const input = al.tensor(ids(10, Number(cfg.vocab_size), 9), [1, 10], 'i32');
      const a = m.model.forward(input).dataSync();
      const b = folded.model.forward(input).dataSync();
      let err = 0, mx = 0;
      for (let k = 0; k < a.length; k++) { err = Math.max(err, Math.abs(a[k]! - b[k]!)); mx = Math.max(mx, Math.abs(a[k]!)); }
      console.log(`${fx}: folded vs original f32 logits, max |diff| / max |logit| ${(err / mx).toExponential(2)}`);
      expect(err / mx).toBeLessThan(1e-5);
      input.dispose();
      m.model.dispose();
      folded.model.dispose();
    }, 120_000);
  }
});

describe('actlab eval --weights / --acts', () => {
  it('fake-quantizes weights and restores them; refuses unknown formats and activations without calibration', async () => {
    const { applyQuantEval } = await import('../src/cli/eval-quant.js');
    const m = await al.loadModel(`${ROOT}llama3`, { backend: 'js' });
    const input = al.tensor(ids(8, Number(m.config.vocab_size), 2), [1, 8], 'i32');
    const before = Array.from(m.model.forward(input).dataSync());
    expect(() => applyQuantEval(m, { weights: 'int4' })).toThrow(/--weights int4: no matrix of this model has rows that int4_g128 blocks divide/);
    const q = applyQuantEval(m, { weights: 'int4_g32' })!;
    expect((q.summary.weights as { matrices: number }).matrices).toBeGreaterThan(5);
    expect(Array.from(m.model.forward(input).dataSync())).not.toEqual(before);
    q.restore();
    expect(Array.from(m.model.forward(input).dataSync())).toEqual(before);
    expect(() => applyQuantEval(m, { weights: 'int3' })).toThrow(/--weights: unknown type 'int3'/);
    expect(() => applyQuantEval(m, { acts: 'int9' })).toThrow(/--acts: unknown activation format 'int9'/);
    expect(() => applyQuantEval(m, { acts: 'int8' })).toThrow(/--acts needs calibration text/);
    expect(() => applyQuantEval(m, { acts: 'int8', actsHooks: 'no_such_hook', calib: 'x' })).toThrow(/no hook point of this model matches/);
    // a packed model (no f32 parameters) finds its linear inputs from the checkpoint's names
    const packed = await al.loadModel(await writePacked('llama3', 'int8'), { backend: 'js' });
    expect(() => applyQuantEval(packed, { acts: 'int8' })).toThrow(/--acts needs calibration text/);
    packed.model.dispose();
    input.dispose();
    m.model.dispose();
  }, 60_000);
});
