// The activation store on a tiny random Llama and a byte-level tokenizer (no ../shared):
// values read back equal a direct runWithCache; shuffled batches cover every row once; a kill at
// every file operation of a harvest, then a resume, gives a byte-identical store; a real SIGKILLed
// child process does too (needs dist/, built by `npx tsc -p tsconfig.json`); another harvest's
// folder is refused and left intact; bad corpus input is counted; unknown hooks list close names.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { runWithCache } from '../src/hooks/run.js';
import { BytesSource } from '../src/io/byte-source.js';
import type { FileStat, FileStore, WriteSink } from '../src/io/file-store.js';
import { MemoryStore } from '../src/io/memory-store.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../src/tensor/dtype.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { describeStats, emptyStats, readContexts } from '../src/store/corpus.js';
import { StoreMismatchError, type StoreDType } from '../src/store/manifest.js';
import { closestHookNames, matchHookPatterns } from '../src/hooks/patterns.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest, type HarvestOptions } from '../src/store/writer.js';

const CONFIG = {
  model_type: 'llama', vocab_size: 260, max_position_embeddings: 64, hidden_size: 32, num_attention_heads: 4,
  num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 40, rope_theta: 10000,
};
const HOOKS = ['blocks.0.hook_resid_pre', 'blocks.1.attn.hook_pattern', 'blocks.1.hook_mlp_out'];

/** One token per UTF-8 byte; BOS 256, EOS 257. */
export function byteTokenizer(): Tokenizer {
  return {
    kind: 'hf', vocabSize: 258, bosId: 256, eosId: 257, eosIds: [257], padId: null, chatTemplate: null,
    encode: (text, o) => [...(o?.addSpecialTokens === false ? [] : [256]), ...new TextEncoder().encode(text)],
    decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids.filter((i) => i < 256))),
    idToToken: (id) => (id < 256 ? String.fromCharCode(id) : id === 256 ? '<s>' : id === 257 ? '</s>' : undefined),
    tokenToId: () => undefined,
    applyChatTemplate: () => { throw new Error('no chat template'); },
  };
}

const enc = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.byteLength; }
  return out;
};

/** A corpus of paragraphs, with an invalid UTF-8 line, runs of blank lines and one long paragraph. */
function makeCorpus(paragraphs = 30): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < paragraphs; i++) {
    if (i === 4) parts.push(enc('good line\n'), Uint8Array.of(0x62, 0x61, 0x64, 0xc3, 0x28, 0x0a), enc('rest of a bad paragraph\n\n'));
    else if (i === 9) parts.push(enc(`${'A long paragraph, longer than one context. '.repeat(4)}\n\n\n`));
    else parts.push(enc(`Paragraph ${i}: ünïcode ${'x'.repeat(i % 7)}\nsecond line ${i}\n\n`));
  }
  return cat(...parts);
}

/** A MemoryStore whose writing operations are numbered; at operation `killAt` it "dies": that
 * operation does not happen (a write happens half), and every later call throws, as after SIGKILL. */
class KillableStore implements FileStore {
  readonly ops: string[] = [];
  dead = false;
  constructor(readonly inner: MemoryStore, readonly killAt = Infinity) {}
  private alive(): void {
    if (this.dead) throw new Killed();
  }
  private step(what: string, path: string): boolean {
    this.alive();
    this.ops.push(`${what} ${path.split('/').pop()!.replace(/\.tmp-.*/, '.tmp')}`);
    if (this.ops.length - 1 === this.killAt) { this.dead = true; return true; }
    return false;
  }
  join(...p: string[]): string { return this.inner.join(...p); }
  async stat(p: string): Promise<FileStat | null> { this.alive(); return this.inner.stat(p); }
  async readBytes(p: string): Promise<Uint8Array> { this.alive(); return this.inner.readBytes(p); }
  async openRead(p: string) { this.alive(); return this.inner.openRead(p); }
  async list(d: string): Promise<string[]> { this.alive(); return this.inner.list(d); }
  async openAppend(p: string): Promise<WriteSink> {
    if (this.step('open', p)) throw new Killed();
    const s = await this.inner.openAppend(p);
    return {
      write: async (b) => {
        if (this.step('write', p)) { await s.write(b.subarray(0, b.byteLength >> 1)); throw new Killed(); }
        await s.write(b);
      },
      close: async () => { if (this.step('close', p)) throw new Killed(); await s.close(); },
    };
  }
  async rename(a: string, b: string): Promise<void> { if (this.step('rename', a)) throw new Killed(); await this.inner.rename(a, b); }
  async remove(p: string): Promise<void> { if (this.step('remove', p)) throw new Killed(); await this.inner.remove(p); }
}
class Killed extends Error { constructor() { super('killed'); } }

/** Every file of a store folder: name -> bytes. */
async function snapshot(store: FileStore, dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const n of (await store.list(dir)).sort()) out.set(n, Buffer.from(await store.readBytes(store.join(dir, n))));
  return out;
}
function expectSameFiles(a: Map<string, Buffer>, b: Map<string, Buffer>, label: string): void {
  expect([...a.keys()], label).toEqual([...b.keys()]);
  for (const [k, v] of a) expect(v.equals(b.get(k)!), `${label}: ${k} differs`).toBe(true);
}

async function allRows(s: ActivationStore, hook: string, o: { shuffle?: boolean; seed?: number; flatten?: 'tokens' | 'contexts'; batchSize?: number } = {}): Promise<{ rows: Float32Array[] | Int32Array[]; shapes: number[][] }> {
  const rows: (Float32Array | Int32Array)[] = [];
  const shapes: number[][] = [];
  for await (const t of s.batches({ hook, batchSize: o.batchSize ?? 7, shuffle: o.shuffle, seed: o.seed, flatten: o.flatten ?? 'tokens' })) {
    shapes.push([...t.shape]);
    const d = t.dataSync() as Float32Array | Int32Array;
    const per = d.length / t.shape[0]!;
    for (let i = 0; i < t.shape[0]!; i++) rows.push(d.slice(i * per, (i + 1) * per));
    t.dispose();
  }
  return { rows: rows as Float32Array[] | Int32Array[], shapes };
}

let backend: al.Backend;
let model: CausalLM;
const tokenizer = byteTokenizer();
const corpusBytes = makeCorpus();
const base = (store: FileStore, o: Partial<HarvestOptions> = {}): HarvestOptions => ({
  model, tokenizer, corpus: new BytesSource(corpusBytes, 'corpus.txt'), hooks: HOOKS, outDir: 'out', context: 16,
  contextsPerShard: 5, batchSize: 3, store, ...o,
});

beforeAll(async () => {
  backend = await al.initBackend('js');
  model = randomModel(CONFIG, backend, { seed: 3 });
});

describe('hook patterns', () => {
  const names = () => model.hookPoints().map((h) => h.name);
  it('expand globs in model order, each name once', () => {
    expect(matchHookPatterns('blocks.*.hook_resid_pre, blocks.1.hook_resid_pre', names())).toEqual(['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_pre']);
    expect(matchHookPatterns('*.attn.hook_pattern', names())).toEqual(['blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_pattern']);
    expect(matchHookPatterns('hook_embed', names())).toEqual(['hook_embed']);
  });
  it('a pattern that matches nothing lists the closest names', () => {
    expect(() => matchHookPatterns('blocks.*.hook_resid_pr', names())).toThrow(/closest 'blocks\.\*\.hook_resid_pre'/);
    expect(() => matchHookPatterns('blocks.0.hook_resid_pre,blocks.0.hook_atn_out', names())).toThrow(/'blocks\.0\.hook_atn_out': closest 'blocks\.0\.hook_attn_out'/);
    expect(() => matchHookPatterns(' , ', names())).toThrow(/no hook pattern/);
    expect(closestHookNames('ln_final.hook_normalised', names())[0]).toBe('ln_final.hook_normalized');
  });
});

describe('corpus', () => {
  it('paragraphs: bad UTF-8 skipped with its line, blank lines and long documents counted, tail dropped', async () => {
    const stats = emptyStats();
    const ctxs: Int32Array[] = [];
    for await (const c of readContexts(new BytesSource(corpusBytes, 'c.txt'), tokenizer, { context: 16, bos: true, chunkBytes: 64 }, stats)) ctxs.push(c);
    // The expected stream, built by hand: paragraphs joined by EOS, cut into bodies of 15 after BOS.
    const text = new TextDecoder('utf-8').decode(corpusBytes);
    const docs = text.split(/\n\s*\n/).map((p) => p.replace(/\n+$/, '')).filter((p) => p && !p.includes('\ufffd'));
    const stream: number[] = [];
    docs.forEach((d, i) => { if (i) stream.push(257); stream.push(...enc(d)); });
    expect(ctxs.length).toBe(Math.floor(stream.length / 15));
    ctxs.forEach((c, i) => expect([...c]).toEqual([256, ...stream.slice(i * 15, i * 15 + 15)]));
    expect(stats.documents).toBe(docs.length);
    expect(stats.invalidUtf8).toBe(1);
    expect(stats.invalidUtf8Lines).toEqual([14]);
    expect(stats.emptyLines).toBe(31);
    expect(stats.longDocuments).toBe(docs.filter((d) => enc(d).length > 15).length);
    expect(stats.droppedTokens).toBe(stream.length % 15);
    expect(stats.done).toBe(true);
    const report = describeStats(stats).join('\n');
    console.log(`corpus report:\n${report}`);
    expect(report).toMatch(/1 document\(s\) skipped: not valid UTF-8 \(line 14\)/);
  });

  it('lines and JSONL: empty, invalid JSON, missing field and bad UTF-8 are skipped and counted', async () => {
    const lines = cat(enc('{"text":"alpha"}\n\n{"text": 3}\nnot json\n'), Uint8Array.of(0x7b, 0xff, 0x7d, 0x0a), enc('{"body":"x"}\r\n{"text":"beta gamma"}\n   \n{"text":""}'));
    const stats = emptyStats();
    const ctxs: number[] = [];
    for await (const c of readContexts(new BytesSource(lines, 'c.jsonl'), tokenizer, { context: 4, bos: false }, stats)) ctxs.push(...c);
    expect(ctxs).toEqual([...enc('alph'), ...enc('a'), 257, ...enc('be'), ...enc('ta g'), ...enc('amma')]);
    expect(stats).toMatchObject({ lines: 9, documents: 2, emptyLines: 2, emptyDocuments: 1, invalidUtf8: 1, invalidUtf8Lines: [5], invalidJson: 3, invalidJsonLines: [3, 4, 6] });
    const perLine = emptyStats();
    const got: number[] = [];
    for await (const c of readContexts(new BytesSource(enc('ab\n\ncd\n'), 'c.txt'), tokenizer, { context: 5, bos: false, split: 'line' }, perLine)) got.push(...c);
    expect(got).toEqual([...enc('ab'), 257, ...enc('cd')]);
    expect(perLine.emptyLines).toBe(1);
  });
});

describe('harvest and read back', () => {
  for (const dtype of ['f32', 'f16', 'bf16'] as StoreDType[]) {
    it(`${dtype}: values equal a direct runWithCache of the stored contexts`, async () => {
      const store = new MemoryStore();
      const r = await harvest(base(store, { dtype }));
      const s = await ActivationStore.open('out', { store });
      expect(s.contexts).toBe(r.manifest.contexts);
      expect(s.tokenCount).toBe(s.contexts * 16);
      expect(s.shards.length).toBe(Math.ceil(s.contexts / 5));
      expect(s.manifest.complete).toBe(true);
      expect(await s.verify()).toEqual([]);
      const ctxs: Int32Array[] = [];
      for await (const c of readContexts(new BytesSource(corpusBytes, 'c.txt'), tokenizer, { context: 16, bos: true })) ctxs.push(c);
      const toks = (await allRows(s, 'tokens', { flatten: 'contexts' })).rows;
      expect(toks.map((t) => [...t])).toEqual(ctxs.map((c) => [...c]));
      const ids = al.tensor(Int32Array.from(ctxs.flatMap((c) => [...c])), [ctxs.length, 16], 'i32', { backend });
      const { logits, cache } = runWithCache(model, ids, { names: HOOKS });
      logits.dispose(); ids.dispose();
      const round = dtype === 'f16' ? (x: number) => f16BitsToF32(f32ToF16Bits(x)) : dtype === 'bf16' ? (x: number) => bf16BitsToF32(f32ToBf16Bits(x)) : (x: number) => Math.fround(x);
      for (const h of HOOKS) {
        const want = cache.get(h).dataSync();
        const got = (await allRows(s, h, { flatten: 'contexts' })).rows;
        const flat = Float32Array.from(got.flatMap((x) => [...x]));
        expect(flat.length).toBe(want.length);
        let maxDiff = 0;
        let maxRound = 0;
        for (let i = 0; i < want.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(flat[i]! - round(want[i]!)));
          maxRound = Math.max(maxRound, Math.abs(flat[i]! - want[i]!) / Math.max(Math.abs(want[i]!), 1e-4));
        }
        console.log(`${dtype} ${h}: max diff to rounded direct ${maxDiff}, max relative diff to f32 ${maxRound.toExponential(2)}`);
        expect(maxDiff).toBe(0);
        expect(maxRound).toBeLessThanOrEqual(dtype === 'f32' ? 0 : dtype === 'f16' ? 2 ** -10 : 2 ** -7);
      }
      // Token rows of an attention pattern are query positions: [head, key_pos].
      const byTok = (await allRows(s, 'blocks.1.attn.hook_pattern', { flatten: 'tokens' })).rows;
      expect(s.rowShape('blocks.1.attn.hook_pattern')).toEqual([4, 16]);
      const pat = cache.get('blocks.1.attn.hook_pattern').dataSync(); // [batch, head, q, k]
      const c = 2, q = 5;
      const direct = Array.from({ length: 4 * 16 }, (_, i) => round(pat[((c * 4 + Math.floor(i / 16)) * 16 + q) * 16 + (i % 16)]!));
      expect([...byTok[c * 16 + q]!]).toEqual(direct);
      cache.dispose();
    });
  }

  it('shuffled batches cover every row exactly once, in another order, reproducibly', async () => {
    const store = new MemoryStore();
    await harvest(base(store, { contextsPerShard: 4 }));
    const s = await ActivationStore.open('out', { store });
    const hook = 'blocks.1.hook_mlp_out';
    const seq = await allRows(s, hook, { batchSize: 10 });
    const shuf = await allRows(s, hook, { batchSize: 10, shuffle: true, seed: 1 });
    const again = await allRows(s, hook, { batchSize: 10, shuffle: true, seed: 1 });
    const key = (r: ArrayLike<number>) => Array.from(r).join(',');
    expect(seq.rows.length).toBe(s.rowCount(hook));
    expect(shuf.rows.map(key).sort()).toEqual(seq.rows.map(key).sort());
    expect(shuf.rows.map(key)).not.toEqual(seq.rows.map(key));
    expect(again.rows.map(key)).toEqual(shuf.rows.map(key));
    expect(shuf.shapes.slice(0, -1).every((sh) => sh[0] === 10 && sh[1] === 32)).toBe(true);
    const shapes = (await allRows(s, 'tokens', { batchSize: 10, shuffle: true, seed: 2, flatten: 'contexts' })).shapes;
    expect(shapes.reduce((n, sh) => n + sh[0]!, 0)).toBe(s.contexts);
  });

  it('maxTokens stops early; a later, larger maxTokens continues to the same data', async () => {
    const a = new MemoryStore();
    const r1 = await harvest(base(a, { maxTokens: 16 * 7 + 3 }));
    expect(r1.manifest.contexts).toBe(7);
    expect(r1.manifest.complete).toBe(true);
    const r2 = await harvest(base(a, { maxTokens: 16 * 12 }));
    expect(r2.resumedFrom).toBe(7);
    expect(r2.manifest.contexts).toBe(12);
    const b = new MemoryStore();
    await harvest(base(b, { maxTokens: 16 * 12 }));
    for (const hook of ['tokens', ...HOOKS]) {
      const x = await allRows(await ActivationStore.open('out', { store: a }), hook);
      const y = await allRows(await ActivationStore.open('out', { store: b }), hook);
      expect(x.rows.map((r) => [...r])).toEqual(y.rows.map((r) => [...r]));
    }
  });
});

describe('crash safety', () => {
  const small = makeCorpus(7);
  const kb = (store: FileStore, o: Partial<HarvestOptions> = {}) => base(store, { corpus: new BytesSource(small, 'corpus.txt'), ...o });
  it('a kill at every file operation, then a resume, gives a store identical to an uninterrupted run', async () => {
    const refStore = new MemoryStore();
    const counting = new KillableStore(refStore);
    await harvest(kb(counting));
    const ref = await snapshot(refStore, 'out');
    const ops = counting.ops;
    console.log(`uninterrupted harvest: ${ops.length} file operations, ${ref.size} files`);
    const stages = new Set<string>();
    for (let k = 0; k < ops.length; k++) {
      const mem = new MemoryStore();
      const killable = new KillableStore(mem, k);
      await expect(harvest(kb(killable))).rejects.toBeInstanceOf(Killed);
      // What a reader sees right after the kill: only complete, listed shards.
      if (await mem.stat('out/manifest.json')) {
        const s = await ActivationStore.open('out', { store: mem });
        expect(await s.verify(), `after kill at ${k} (${ops[k]})`).toEqual([]);
        expect((await allRows(s, 'tokens', { flatten: 'contexts' })).rows.length).toBe(s.contexts);
      }
      const prev = ops[k - 1] ?? '';
      if (ops[k]!.startsWith('rename shard')) stages.add('after the temp write, before rename');
      if (ops[k] === 'open manifest.json.tmp' && prev.startsWith('rename shard')) stages.add('after rename, before the manifest');
      if (ops[k] === 'write manifest.json.tmp') stages.add('during the manifest write');
      const warnings: string[] = [];
      await harvest(kb(mem, { onWarning: (w) => warnings.push(w) }));
      expectSameFiles(await snapshot(mem, 'out'), ref, `kill at op ${k} (${ops[k]})${warnings.length ? `; ${warnings.join('; ')}` : ''}`);
    }
    expect([...stages].sort()).toEqual(['after rename, before the manifest', 'after the temp write, before rename', 'during the manifest write']);
  }, 120_000);

  it('kills during a resume too', async () => {
    const refStore = new MemoryStore();
    await harvest(kb(refStore));
    const ref = await snapshot(refStore, 'out');
    const mem = new MemoryStore();
    for (const k of [9, 4, 17, 2, 30]) {
      await harvest(kb(new KillableStore(mem, k))).catch((e) => { if (!(e instanceof Killed)) throw e; });
    }
    await harvest(kb(mem));
    expectSameFiles(await snapshot(mem, 'out'), ref, 'after five kills');
  });

  it('a listed shard that was damaged from outside is recomputed', async () => {
    const mem = new MemoryStore();
    await harvest(kb(mem));
    const ref = await snapshot(mem, 'out');
    mem.files.set('out/shard-000002.safetensors', [new Uint8Array(10)]);
    const warnings: string[] = [];
    await harvest(kb(mem, { onWarning: (w) => warnings.push(w) }));
    expect(warnings.join('\n')).toMatch(/shard-000002.safetensors has 10 bytes/);
    expectSameFiles(await snapshot(mem, 'out'), ref, 'repaired');
    const flipped = Buffer.from(ref.get('shard-000001.safetensors')!);
    flipped[flipped.length - 1]! ^= 1;
    mem.files.set('out/shard-000001.safetensors', [flipped]);
    const s = await ActivationStore.open('out', { store: mem });
    expect(await s.verify()).toEqual(['shard-000001.safetensors: SHA-256 mismatch']);
    await harvest(kb(mem, { verify: true }));
    expectSameFiles(await snapshot(mem, 'out'), ref, 'repaired with verify');
  });

  const root = new URL('..', import.meta.url).pathname;
  const hasDist = existsSync(join(root, 'dist/src/store/writer.js'));
  if (!hasDist) console.log('SKIP real-kill test: dist/src/store/writer.js is missing (build with `npx tsc -p tsconfig.json`)');
  it.skipIf(!hasDist)('a real SIGKILLed child process resumes to the same store', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'actlab-store-'));
    try {
      const dist = (p: string) => `file://${join(root, 'dist/src', p)}`;
      writeFileSync(join(tmp, 'corpus.txt'), makeCorpus(200));
      writeFileSync(join(tmp, 'child.mjs'), `
import { initBackend } from '${dist('index.js')}';
import { randomModel } from '${dist('models/random.js')}';
import { harvest } from '${dist('store/writer.js')}';
const [corpus, outDir] = process.argv.slice(2);
const backend = await initBackend('js');
const model = randomModel(${JSON.stringify(CONFIG)}, backend, { seed: 3 });
const tokenizer = {
  kind: 'hf', vocabSize: 258, bosId: 256, eosId: 257, eosIds: [257], padId: null, chatTemplate: null,
  encode: (text, o) => [...(o?.addSpecialTokens === false ? [] : [256]), ...new TextEncoder().encode(text)],
};
await harvest({ model, tokenizer, corpus, outDir, hooks: ${JSON.stringify(HOOKS)}, context: 16, dtype: 'f16', contextsPerShard: 3, batchSize: 2,
  onProgress: (p) => { if (p.phase === 'harvest') process.stdout.write('.'); } });
process.stdout.write('DONE');
`);
      // Kills land at a random moment: after a random number of batches (the child prints '.' per
      // batch), plus a random delay, so some fall inside shard or manifest writes.
      const runChild = (out: string, kill?: { dots: number; delayMs: number }) => new Promise<{ done: boolean; dots: number; ms: number }>((resolve, reject) => {
        const t0 = Date.now();
        const p = spawn(process.execPath, [join(tmp, 'child.mjs'), join(tmp, 'corpus.txt'), join(tmp, out)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        let armed = false;
        p.stdout.on('data', (d) => {
          stdout += d;
          if (kill && !armed && stdout.length >= kill.dots) { armed = true; setTimeout(() => p.kill('SIGKILL'), kill.delayMs); }
        });
        p.stderr.on('data', (d) => { stderr += d; });
        p.on('exit', (code, signal) => {
          if (signal === 'SIGKILL' || code === 0) resolve({ done: stdout.endsWith('DONE'), dots: stdout.replace('DONE', '').length, ms: Date.now() - t0 });
          else reject(new Error(`child exited with ${code}: ${stderr}`));
        });
      });
      const ref = await runChild('ref');
      expect(ref.done).toBe(true);
      console.log(`uninterrupted child: ${ref.dots} batches in ${ref.ms} ms`);
      let kills = 0;
      for (let i = 0; i < 4; i++) {
        const r = await runChild('killed', { dots: 1 + Math.floor(Math.random() * ref.dots / 6), delayMs: Math.floor(Math.random() * 20) });
        if (r.done) break;
        kills++;
      }
      const last = await runChild('killed');
      expect(last.done).toBe(true);
      console.log(`SIGKILLed ${kills} time(s) mid-harvest, then resumed to the end`);
      expect(kills).toBeGreaterThan(1);
      const files = (d: string) => readdirSync(join(tmp, d)).sort();
      expect(files('killed')).toEqual(files('ref'));
      for (const f of files('ref')) expect(readFileSync(join(tmp, 'killed', f)).equals(readFileSync(join(tmp, 'ref', f))), f).toBe(true);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('refusals', () => {
  it('a store of another model, hook set, dtype, context or corpus is refused and left intact', async () => {
    const mem = new MemoryStore();
    await harvest(base(mem, { maxTokens: 16 * 6 }));
    const before = await snapshot(mem, 'out');
    const other = randomModel(CONFIG, backend, { seed: 4 });
    const cases: [Partial<HarvestOptions>, RegExp][] = [
      [{ model: other }, /model weights: the probe logits differ/],
      [{ model: randomModel({ ...CONFIG, num_hidden_layers: 3 }, backend, { seed: 3 }) }, /model dims.*\n.*model config/],
      [{ hooks: [...HOOKS, 'hook_embed'] }, /hooks: .*not in store: hook_embed/],
      [{ hooks: HOOKS.slice(1) }, /not asked for: blocks\.0\.hook_resid_pre/],
      [{ dtype: 'f16', context: 12 }, /dtype: store has f32, asked for f16\n.*context: store has 16, asked for 12/],
      [{ bos: false }, /bos: store has true/],
      [{ corpus: new BytesSource(makeCorpus(31), 'corpus.txt') }, /corpus: store was made from corpus\.txt/],
    ];
    for (const [o, msg] of cases) {
      const e = await harvest(base(mem, o)).catch((x) => x);
      expect(e).toBeInstanceOf(StoreMismatchError);
      expect(e.message).toMatch(msg);
      expectSameFiles(await snapshot(mem, 'out'), before, `after refusing ${Object.keys(o).join(', ')}`);
    }
    console.log((await harvest(base(mem, { model: other, dtype: 'bf16' })).catch((x) => x)).message);
    other.dispose();
  });

  it('a folder that is not a store is refused; unknown hooks are errors', async () => {
    const mem = new MemoryStore();
    mem.files.set('out/notes.txt', [enc('mine')]);
    await expect(harvest(base(mem))).rejects.toThrow(/not empty and has no manifest.json \(it holds notes.txt\)/);
    expect([...mem.files.keys()]).toEqual(['out/notes.txt']);
    await expect(harvest(base(new MemoryStore(), { hooks: ['blocks.0.hook_nope'] }))).rejects.toThrow(/no hook point named 'blocks.0.hook_nope'/);
    // Shards whose manifest was deleted are not ours to clean up.
    const orphan = new MemoryStore();
    await harvest(base(orphan, { maxTokens: 16 * 6 }));
    await orphan.remove('out/manifest.json');
    const kept = await snapshot(orphan, 'out');
    await expect(harvest(base(orphan))).rejects.toThrow(/it holds shard-000000.safetensors, shard-000001.safetensors/);
    expectSameFiles(await snapshot(orphan, 'out'), kept, 'orphaned shards');
  });
});
