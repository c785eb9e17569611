// Control vectors against llama.cpp itself, on stories260K's GGUF: a steering vector actlab made
// and exported, applied by llama.cpp (scripts/llamacpp/cvec_logits.cpp over libllama's
// llama_set_adapter_cvec) at strength s, gives the logits actlab gives with the vector at strength
// s (within 1e-3 relative); placing it one block off does not. And a vector llama.cpp's
// llama-cvector-generator writes loads into actlab and applies at the same site, and its 'mean'
// direction.N is the normalised mean difference of blocks.{N-1}.hook_resid_post that actlab
// computes (the generator's one-block shift). Skipped when the llama.cpp peers or headers are absent.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { readControlVector, writeControlVector, controlVectorFromSteering, controlVectorInterventions } from '../src/interventions/control-vector.js';
import { parseContrastJsonl } from '../src/interventions/contrastive.js';
import { steeringVectors } from '../src/interventions/steering-vectors.js';
import { withInterventions } from '../src/interventions/apply.js';
import type { CausalLM } from '../src/models/model.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';

const ROOT = new URL('..', import.meta.url).pathname;
const GGUF = new URL('../../shared/data/stories260K-gguf/stories260K.gguf', import.meta.url).pathname;
const PEERS = new URL('../../shared/peers/llama.cpp/', import.meta.url).pathname;
const build = existsSync(GGUF) && existsSync(PEERS) ? spawnSync('bash', [join(ROOT, 'scripts/llamacpp/build.sh')], { encoding: 'utf8' }) : null;
const BIN = build?.status === 0 ? build.stdout.trim().split('\n').at(-1)! : null;
const LIB = BIN ? join(BIN, '..', 'lib') : '';
if (!BIN) console.log(`llama.cpp control-vector proof skipped: ${build ? build.stderr.trim() : 'no ../shared peers or stories260K GGUF'}`);

const tmp = mkdtempSync(join(tmpdir(), 'actlab-cvec-llamacpp-'));
let model: CausalLM;
let tok: Tokenizer;
const PROMPT = 'Once upon a time, there was a little girl named Lily. She';

const POS = ['Lily was very happy. She smiled and laughed.', 'The sun was bright and everyone was glad.', 'Tom loved his new toy and jumped with joy.', 'The dog was happy and played in the park.'];
const NEG = ['Lily was very sad. She cried and frowned.', 'The sky was dark and everyone was upset.', 'Tom lost his new toy and cried with fear.', 'The dog was sad and hid under the bed.'];

function llamaLogits(ids: number[], cvec?: string, strength = 1): { logits: Float32Array; info: { directions: number[]; greedy: number[] } } {
  const prefix = join(tmp, `run-${Math.random().toString(36).slice(2)}`);
  const args = [GGUF, prefix, ids.join(','), ...(cvec ? ['--cvec', cvec, '--strength', String(strength)] : [])];
  const out = execFileSync(BIN!, args, { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: LIB }, stdio: ['ignore', 'pipe', 'pipe'] });
  const info = JSON.parse(out.trim().split('\n').at(-1)!);
  const b = readFileSync(`${prefix}.logits.bin`);
  return { logits: new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), info };
}

function actlabLogits(ids: number[], interventions: Parameters<typeof withInterventions>[1] = []): Float32Array {
  const input = al.tensor(ids, [1, ids.length], 'i32', { backend: model.backend });
  const out = withInterventions(model, interventions, () => model.forward(input));
  const d = Float32Array.from(out.dataSync() as Float32Array);
  out.dispose();
  input.dispose();
  return d;
}

/** max |a − b| / max |b|. */
function rel(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i]! - b[i]!)); m = Math.max(m, Math.abs(b[i]!)); }
  return a.length === b.length ? d / m : Infinity;
}

describe.skipIf(!BIN)('control vectors against llama.cpp (stories260K GGUF)', () => {
  beforeAll(async () => {
    const loaded = await al.loadModel(GGUF, { backend: await al.initBackend('js') });
    model = loaded.model;
    tok = loaded.tokenizer!;
  }, 60_000);

  it('an exported actlab vector at strength s gives llama.cpp\'s logits at strength s', () => {
    const set = parseContrastJsonl(POS.map((p, i) => JSON.stringify({ positive: p, negative: NEG[i] })).join('\n'));
    const sv = steeringVectors(model, tok, set, { method: 'mean_diff', layers: [1, 2, 3, 4] });
    const file = join(tmp, 'actlab-happy.gguf');
    const cv = controlVectorFromSteering(sv, 'llama');
    return writeControlVector(cv, file).then(async () => {
      const ids = tok.encode(PROMPT);
      const base = llamaLogits(ids);
      const plain = actlabLogits(ids);
      console.log(`unsteered: actlab vs llama.cpp rel ${rel(plain, base.logits).toExponential(2)}`);
      const back = await readControlVector(file);
      for (const s of [1.5, -2]) {
        const ll = llamaLogits(ids, file, s);
        expect(ll.info.directions).toEqual([1, 2, 3, 4]);
        const ours = actlabLogits(ids, controlVectorInterventions(back, s, { nLayers: model.dims.nLayers }));
        const err = rel(ours, ll.logits);
        const moved = rel(ll.logits, base.logits);
        // The same vectors one block early (at hook_resid_pre of block N): a placement check.
        const off = actlabLogits(ids, controlVectorInterventions(back, s, { nLayers: model.dims.nLayers }).map((iv) => ({ ...iv, hook: iv.hook.replace('hook_resid_post', 'hook_resid_pre') })));
        console.log(`strength ${s}: actlab vs llama.cpp rel ${err.toExponential(2)}; steering moved llama.cpp's logits by ${moved.toExponential(2)}; one block off: ${rel(off, ll.logits).toExponential(2)}`);
        expect(err).toBeLessThan(1e-3);
        expect(moved).toBeGreaterThan(1e-2);
        expect(rel(off, ll.logits)).toBeGreaterThan(10 * err);
      }
    });
  }, 120_000);

  it('a vector llama-cvector-generator writes loads into actlab and applies at the same site', async () => {
    writeFileSync(join(tmp, 'pos.txt'), `${POS.join('\n')}\n`);
    writeFileSync(join(tmp, 'neg.txt'), `${NEG.join('\n')}\n`);
    const ids = tok.encode(PROMPT);
    for (const method of ['mean', 'pca']) {
      const file = join(tmp, `gen-${method}.gguf`);
      execFileSync(join(PEERS, 'llama-cvector-generator'), ['-m', GGUF, '--positive-file', join(tmp, 'pos.txt'), '--negative-file', join(tmp, 'neg.txt'), '--method', method, '-o', file, '-t', '2'],
        { env: { ...process.env, LD_LIBRARY_PATH: LIB }, stdio: ['ignore', 'pipe', 'pipe'] });
      const cv = await readControlVector(file);
      expect(cv.modelHint).toBe('llama');
      expect([...cv.directions.keys()]).toEqual([1, 2, 3, 4]);
      const s = 3;
      const ll = llamaLogits(ids, file, s);
      const ours = actlabLogits(ids, controlVectorInterventions(cv, s, { nLayers: model.dims.nLayers }));
      const err = rel(ours, ll.logits);
      console.log(`generator (${method}) at strength ${s}: actlab vs llama.cpp rel ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-3);
      if (method !== 'mean') continue;
      // The generator's 'mean': per layer il, the normalised mean over token positions (rows
      // not all ≤ 1e-6 after subtraction) of l_out(il) positive − negative, prompts padded to one
      // length with the ' ' token; written as direction.{il + 1}.
      const space = tok.encode(' ', { addSpecialTokens: false }).at(-1)!;
      const D = model.dims.dModel;
      const meanDirection = (hook: string): { dir: number[]; rows: number } => {
        const acc = new Float64Array(D);
        let rows = 0;
        POS.forEach((p, i) => {
          const a = tok.encode(p);
          const b = tok.encode(NEG[i]!);
          const L = Math.max(a.length, b.length);
          const pad = (x: number[]) => [...x, ...new Array<number>(L - x.length).fill(space)];
          const input = al.tensor([...pad(a), ...pad(b)], [2, L], 'i32', { backend: model.backend });
          const { logits, cache } = al.runWithCache(model, input, { names: [hook] });
          const h = cache.get(hook).dataSync() as Float32Array;
          for (let t = 0; t < L; t++) {
            const diff = Array.from({ length: D }, (_, k) => h[t * D + k]! - h[(L + t) * D + k]!);
            if (!diff.some((x) => x > 1e-6)) continue;
            diff.forEach((x, k) => { acc[k]! += x; });
            rows++;
          }
          logits.dispose(); cache.dispose(); input.dispose();
        });
        const norm = Math.hypot(...acc);
        return { dir: Array.from(acc, (x) => x / norm), rows };
      };
      const cosine = (a: number[], b: Float32Array) => a.reduce((s2, x, k) => s2 + x * b[k]!, 0);
      for (const n of [1, 2, 3, 4]) {
        const got = cv.directions.get(n)!;
        const before = meanDirection(`blocks.${n - 1}.hook_resid_post`);
        const cos = cosine(before.dir, got);
        const same = n < model.dims.nLayers ? cosine(meanDirection(`blocks.${n}.hook_resid_post`).dir, got) : NaN;
        console.log(`generator mean direction.${n}: cosine ${cos.toFixed(6)} with actlab's mean difference of blocks.${n - 1}.hook_resid_post (${before.rows} rows), ${same.toFixed(4)} with blocks.${n}.hook_resid_post`);
        expect(cos).toBeGreaterThan(0.999);
        expect(cos).toBeGreaterThan(same);
      }
    }
  }, 180_000);
});
