// Loading a model inside the page's worker: an organism shipped with the page, files the user
// picked, or files fetched by URL (a static host, or the lab server's /api/file). HF folders go
// into the platform's memory store and through loadModel; a GGUF or llama2.c file is read from
// its Blob. The tokenizer is read the way openCheckpoint reads it in Node, so numbers match.
import { loadModel } from '../models/load.js';
import { BlobSource } from '../io/byte-source.js';
import { getPlatform } from '../io/platform.js';
import { HfTokenizer } from '../tokenizer/hf.js';
import { Llama2cTokenizer, parseLlama2cTokenizer } from '../tokenizer/llama2c.js';
import { labModel } from '../lab/model.js';
import type { LabModel } from '../lab/views.js';

export interface NamedBlob {
  name: string;
  blob: Blob;
}

const base = (n: string) => n.replace(/^.*[\\/]/, '');
let folders = 0;

/** Builds a LabModel from files: an HF folder's files (config.json + model.safetensors ...), or one GGUF / llama2.c file (+ tokenizer). */
export async function loadFiles(files: NamedBlob[], backend: string, name: string, onTensor?: (done: number, total: number) => void): Promise<LabModel> {
  const by = new Map(files.map((f) => [base(f.name), f.blob]));
  const progress = onTensor && ((_: string, done: number, total: number) => onTensor(done, total));
  if (by.has('config.json')) {
    const p = await getPlatform();
    const dir = `/lab/${folders++}`;
    for (const [n, b] of by) {
      const w = await p.store.openAppend(`${dir}/${n}`);
      await w.write(new Uint8Array(await b.arrayBuffer()));
      await w.close();
    }
    return labModel(await loadModel(dir, { backend, onTensor: progress }), name);
  }
  const main = files.find((f) => /\.(gguf|bin)$/.test(f.name) && !/^tok/.test(base(f.name)));
  if (!main) throw new Error(`no model among ${files.map((f) => base(f.name)).join(', ')}: give an HF folder's files (config.json, model.safetensors, tokenizer.json), a .gguf, or a llama2.c .bin (with tokenizer.bin)`);
  const m = await loadModel(new BlobSource(main.blob, base(main.name)), { backend, onTensor: progress });
  const vocab = m.model.dims.vocabSize;
  // tokenizer.bin, else another tok*.bin picked with the model (llama2.c's stories260K comes with
  // tok512.bin), as the lab server finds the tokenizer beside a model.
  const tokName = by.has('tokenizer.bin') ? 'tokenizer.bin'
    : [...by.keys()].filter((n) => /^tok.*\.bin$/.test(n) && n !== base(main.name)).sort()[0];
  const tokBin = tokName === undefined ? undefined : by.get(tokName);
  const tokJson = by.get('tokenizer.json');
  if (!m.tokenizer && tokBin) m.tokenizer = new Llama2cTokenizer(parseLlama2cTokenizer(new Uint8Array(await tokBin.arrayBuffer()), vocab, tokName!));
  else if (!m.tokenizer && tokJson) m.tokenizer = new HfTokenizer({ tokenizer: JSON.parse(await tokJson.text()), config: m.config, generationConfig: m.generationConfig }, 'tokenizer.json');
  return labModel(m, name);
}

/** Fetches `urls` (missing optional files are skipped) and loads them. */
export async function loadUrls(urls: { name: string; url: string; optional?: boolean }[], backend: string, name: string, onTensor?: (done: number, total: number) => void): Promise<LabModel> {
  const files: NamedBlob[] = [];
  for (const u of urls) {
    const r = await fetch(u.url);
    if (!r.ok) {
      if (u.optional) continue;
      throw new Error(`${u.url}: HTTP ${r.status} ${await r.text().catch(() => '')}`.trim());
    }
    files.push({ name: u.name, blob: await r.blob() });
  }
  return loadFiles(files, backend, name, onTensor);
}

/** The files of a model at `url`: a .gguf / .bin file (with its tokenizer.bin beside it), else an HF folder. */
export function modelUrls(url: string, fileUrl: (path: string) => string = (p) => p): { name: string; url: string; optional?: boolean }[] {
  const u = url.replace(/\/+$/, '');
  if (/\.(gguf|bin)$/.test(u)) {
    return [{ name: base(u), url: fileUrl(u) }, ...(u.endsWith('.bin') ? [{ name: 'tokenizer.bin', url: fileUrl(u.replace(/[^/]*$/, 'tokenizer.bin')), optional: true }] : [])];
  }
  return [
    { name: 'config.json', url: fileUrl(`${u}/config.json`) },
    { name: 'model.safetensors', url: fileUrl(`${u}/model.safetensors`) },
    ...['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'].map((n) => ({ name: n, url: fileUrl(`${u}/${n}`), optional: true })),
  ];
}
