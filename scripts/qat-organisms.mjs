// Post-training quantization against quantization-aware training on the modular-addition
// organism (models/organisms/modular-addition): for each format, the trained model quantized as it
// is (PTQ), then the same model fine-tuned by actlab's trainer with fake-quantized weights and the
// straight-through estimator (src/quantize/qat.ts) for --steps full-batch updates and quantized
// again (QAT); test accuracy and loss of each, beside the f32 model and, as the control, the f32
// model fine-tuned the same steps without fake quantization and then quantized (PTQ after FT):
// the difference between that column and QAT is what training through the quantizer buys.
// Needs `npm run build`.
// Usage: node scripts/qat-organisms.mjs [--steps 200] [--lr 1e-3] [--types int8,int4_g64,int4_g32] [--json]
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : d; };
const steps = Number(opt('steps', '200'));
const lr = Number(opt('lr', '1e-3'));
const types = opt('types', 'int8,int4_g64,int4_g32,int4a_g64,fp4').split(',');
const al = await import(join(root, 'dist/src/index.js'));
const org = await import(join(root, 'dist/src/organisms/index.js'));
const { fakeQuantizeModel } = await import(join(root, 'dist/src/quantize/fake.js'));
const { qatTrain } = await import(join(root, 'dist/src/quantize/qat.js'));

const backend = await al.initBackend('wasm');
const dir = join(root, 'models', 'organisms', 'modular-addition');
const load = async () => al.loadModel(dir, { backend });
const r = org.RECIPES['modular-addition'];
const { train: tr, test } = org.modularAdditionData(org.P, r.frac, r.dataSeed);
const score = (model) => { const t = org.evaluate(model, test, [2]); return { acc: t.accuracy, loss: t.loss }; };

const rows = [];
const f = await load();
const f32 = score(f.model);
const { train } = await import(join(root, 'dist/src/train/trainer.js'));
const trainOpts = (config) => ({ steps, batchSize: tr.length, lr, minLr: lr, weightDecay: r.weightDecay, betas: r.betas, warmupSteps: 10, lossPositions: [2], seed: 1, modelConfig: config });
await train(f.model, tr, trainOpts(f.config));
rows.push({ type: 'f32', ptq: f32, ft: score(f.model) });
/** The fine-tuned f32 model quantized in `type`. */
const afterFt = (type) => { const q = fakeQuantizeModel(f.model, f.config, () => type); const s = score(f.model); q.restore(); return s; };
for (const type of types) {
  const m = await load();
  const q = fakeQuantizeModel(m.model, m.config, () => type);
  const ptq = score(m.model);
  q.restore();
  const t0 = performance.now();
  await qatTrain(m.model, tr, type, trainOpts(m.config));
  const q2 = fakeQuantizeModel(m.model, m.config, () => type);
  const qat = score(m.model);
  q2.restore();
  rows.push({ type, ptq, ft: afterFt(type), qat, qat_seconds: Math.round((performance.now() - t0) / 100) / 10, matrices: Object.keys(q2.applied).length });
  m.model.dispose();
  process.stderr.write(`${type}: ${JSON.stringify(rows.at(-1))}\n`);
}
f.model.dispose();
if (args.includes('--json')) console.log(JSON.stringify({ steps, lr, rows }));
else {
  console.log(`modular-addition (p = 113, test split), QAT: ${steps} full-batch AdamW steps at lr ${lr}`);
  console.log('| weights | PTQ test acc | PTQ test loss | f32 fine-tuned, then PTQ: acc | loss | QAT test acc | QAT test loss |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  const p = (x) => (x === undefined ? '—' : `${(100 * x).toFixed(2)}%`);
  const l = (x) => (x === undefined ? '—' : x.loss.toFixed(4));
  for (const row of rows) console.log(`| ${row.type} | ${p(row.ptq.acc)} | ${l(row.ptq)} | ${p(row.ft?.acc)} | ${l(row.ft)} | ${p(row.qat?.acc)} | ${l(row.qat)} |`);
}
