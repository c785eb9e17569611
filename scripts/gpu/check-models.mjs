// End-to-end check of the models on a backend against transformers (fixtures/hf): logits,
// residual stream and attention patterns taken through runWithCache (activations stay on the
// device until read), a greedy continuation with a KV cache, and a padded batch. Everything is
// read with `await tensor.data()`, so it runs on asynchronous backends (WebGPU).
// Usage: node scripts/gpu/check-models.mjs [--backend webgpu] [--json FILE]   (after npm run build)
// Also imported by test/webgpu-models.test.ts with the library from src/.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TOLERANCE = 1e-4;

function relErr(got, ref) {
  let maxRef = 1;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    const d = Math.abs(got[i] - ref[i]);
    maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
  }
  return got.length === ref.length ? maxDiff / maxRef : Infinity;
}

const argmax = (a) => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i; return b; };

/**
 * lib: { initBackend, SafetensorsFile, NodeFileSource, buildModel, runWithCache, KVCache, tensor }.
 * Returns one row per architecture.
 */
export async function checkModels(lib, { backendName = 'webgpu', archs, log = console.log } = {}) {
  const dir = join(ROOT, 'fixtures', 'hf');
  const all = readdirSync(dir).filter((a) => existsSync(join(dir, a, 'model.safetensors')));
  const backend = await lib.initBackend(backendName);
  const host = await lib.initBackend('js');
  const rows = [];
  for (const arch of archs ?? all) {
    const row = { arch, status: 'pass', worst: 0, worstAt: '', logits: 0, greedy: '', padding: 0, ms: 0 };
    const t0 = performance.now();
    let model;
    let refFile;
    try {
      const weights = await lib.SafetensorsFile.open(await lib.NodeFileSource.open(join(dir, arch, 'model.safetensors')));
      model = await lib.buildModel(JSON.parse(readFileSync(join(dir, arch, 'config.json'), 'utf8')), weights, backend);
      await weights.close();
      refFile = await lib.SafetensorsFile.open(await lib.NodeFileSource.open(join(dir, arch, 'reference.safetensors')));
      const meta = JSON.parse(readFileSync(join(dir, arch, 'reference.json'), 'utf8'));
      const ref = async (name) => { const t = await refFile.load(name, host); const d = t.dataSync(); t.dispose(); return d; };
      const L = model.dims.nLayers;
      const names = /hook_resid_pre$|hook_pattern$|^ln_final.hook_normalized$/;
      for (let k = 0; k < meta.input_ids.length; k++) {
        const ids = meta.input_ids[k];
        const input = lib.tensor(ids, [1, ids.length], 'i32', { backend });
        const { logits, cache } = lib.runWithCache(model, input, { names });
        input.dispose();
        const errs = { logits: relErr(await logits.data(), await ref(`b${k}.logits`)) };
        logits.dispose();
        for (let i = 0; i <= L; i++) {
          const got = await cache.get(i < L ? `blocks.${i}.hook_resid_pre` : 'ln_final.hook_normalized').data();
          errs[`hidden_states.${i}`] = relErr(got, await ref(`b${k}.hidden_states.${i}`));
        }
        for (let i = 0; i < L; i++) errs[`attentions.${i}`] = relErr(await cache.get(`blocks.${i}.attn.hook_pattern`).data(), await ref(`b${k}.attentions.${i}`));
        cache.dispose();
        for (const [n, e] of Object.entries(errs)) if (!(e <= row.worst)) { row.worst = e; row.worstAt = `prompt ${k} ${n}`; }
        row.logits = Math.max(row.logits, errs.logits);
        // Greedy continuation with the KV cache, read back one token at a time.
        const want = meta[`b${k}.greedy`];
        const cacheKV = new lib.KVCache();
        const got = [...ids];
        let next = lib.tensor(ids, [1, ids.length], 'i32', { backend });
        while (got.length < want.length) {
          const lg = model.forward(next, { cache: cacheKV, logits: 'last' });
          next.dispose();
          const id = argmax(await lg.data());
          lg.dispose();
          got.push(id);
          next = lib.tensor([id], [1, 1], 'i32', { backend });
        }
        next.dispose();
        cacheKV.dispose();
        const same = got.every((x, i) => x === want[i]);
        row.greedy += `${k ? ' ' : ''}${same ? 'same' : `DIFFERS at ${got.findIndex((x, i) => x !== want[i])}`}`;
        if (!same) row.status = 'fail';
      }
      // Both prompts left-padded in one batch against each alone.
      const [a, b] = meta.input_ids;
      const T = Math.max(a.length, b.length);
      const V = model.dims.vocabSize;
      const run = async (rowsIds, attentionMask) => {
        const t = lib.tensor(rowsIds.flat(), [rowsIds.length, rowsIds[0].length], 'i32', { backend });
        const l = model.forward(t, { attentionMask });
        t.dispose();
        const d = await l.data();
        l.dispose();
        return d;
      };
      const alone = [await run([a]), await run([b])];
      const pad = (ids, fill) => [...new Array(T - ids.length).fill(fill), ...ids];
      const both = await run([pad(a, 0), pad(b, 0)], [pad(a.map(() => 1), 0), pad(b.map(() => 1), 0)]);
      [a, b].forEach((ids, s) => {
        const off = T - ids.length;
        row.padding = Math.max(row.padding, relErr(both.subarray((s * T + off) * V, (s * T + off + ids.length) * V), alone[s]));
      });
      if (row.worst >= TOLERANCE || row.padding >= TOLERANCE) row.status = 'fail';
    } catch (e) {
      row.status = 'error';
      row.error = String(e?.message ?? e).split('\n')[0];
    } finally {
      model?.dispose();
      await refFile?.close();
    }
    row.ms = Math.round(performance.now() - t0);
    rows.push(row);
    log(`${arch}: ${row.status} worst ${row.worst.toExponential(2)} (${row.worstAt}) logits ${row.logits.toExponential(2)} greedy ${row.greedy} padding ${row.padding.toExponential(2)}${row.error ? ' — ' + row.error : ''}`);
  }
  return rows;
}

export function table(rows, backendName) {
  const out = [`| model | ${backendName} | worst rel. err (where) | logits | greedy (2 prompts) | padded batch |`, '|---|---|---:|---:|---|---:|'];
  for (const r of rows) {
    out.push(r.status === 'error'
      ? `| ${r.arch} | error | ${r.error} | | | |`
      : `| ${r.arch} | ${r.status} | ${r.worst.toExponential(1)} (${r.worstAt}) | ${r.logits.toExponential(1)} | ${r.greedy} | ${r.padding.toExponential(1)} |`);
  }
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const opt = (n, d) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : d; };
  const backendName = opt('backend', 'webgpu');
  const d = (p) => import(join(ROOT, 'dist', 'src', p));
  await d('backends/index.js');
  const [engine, st, fs, reg, run, kv, creation] = await Promise.all([
    d('tensor/engine.js'), d('formats/safetensors.js'), d('io/node/file-source.js'), d('models/registry.js'),
    d('hooks/run.js'), d('models/layers/kv-cache.js'), d('ops/creation.js'),
  ]);
  const lib = {
    initBackend: engine.initBackend, SafetensorsFile: st.SafetensorsFile, NodeFileSource: fs.NodeFileSource,
    buildModel: reg.buildModel, runWithCache: run.runWithCache, KVCache: kv.KVCache, tensor: creation.tensor,
  };
  const be = await engine.initBackend(backendName);
  console.log(`models on ${backendName}: ${JSON.stringify(be.info?.() ?? {})}`);
  const rows = await checkModels(lib, { backendName });
  console.log(table(rows, backendName));
  const json = opt('json');
  if (json) writeFileSync(json, JSON.stringify(rows, null, 1));
  engine.disposeBackends();
  process.exit(rows.every((r) => r.status === 'pass') ? 0 : 1);
}
