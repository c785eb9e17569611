// Recorded activation matrices (neural recordings, another tool's activations) from bytes:
// .npy (NumPy's format: a 10-byte preamble and a Python-dict header, parsed by hand here because
// the format is ten lines of spec and no maintained npm parser is smaller than that), CSV (one
// row per stimulus; a header row of non-numbers is skipped), or a tensor of a safetensors file.
// Rank-2 [stimuli, units]; a rank-1 array is one unit; higher ranks keep the first axis as stimuli.
// Not for: reading files (the caller gives bytes, so this runs in the browser too).
import { BytesSource } from '../io/byte-source.js';
import { SafetensorsFile } from '../formats/safetensors.js';
import { initBackend } from '../tensor/engine.js';
import type { Matrix } from './similarity.js';

export function parseNpy(bytes: Uint8Array): Matrix {
  const magic = String.fromCharCode(...bytes.subarray(0, 6));
  if (magic !== '\x93NUMPY') throw new Error('npy: not a NumPy .npy file (bad magic)');
  const major = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*True/.test(header);
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new Error(`npy: cannot read the header ${JSON.stringify(header)}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + headerLen;
  const little = descr[0] !== '>';
  const kind = descr.slice(1);
  const read: Record<string, [number, (o: number) => number]> = {
    f8: [8, (o) => dv.getFloat64(o, little)], f4: [4, (o) => dv.getFloat32(o, little)],
    i8: [8, (o) => Number(dv.getBigInt64(o, little))], i4: [4, (o) => dv.getInt32(o, little)], i2: [2, (o) => dv.getInt16(o, little)],
    u1: [1, (o) => dv.getUint8(o)], i1: [1, (o) => dv.getInt8(o)], u2: [2, (o) => dv.getUint16(o, little)], u4: [4, (o) => dv.getUint32(o, little)],
  };
  const r = read[kind];
  if (!r) throw new Error(`npy: dtype '${descr}' is not supported (float64/32, integers)`);
  if (off + n * r[0] > bytes.byteLength) throw new Error(`npy: the file is shorter than its header's shape [${shape.join(', ')}] needs`);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = r[1](off + i * r[0]);
  const rows = shape.length === 0 ? 1 : shape[0]!;
  const cols = shape.length <= 1 ? 1 : n / rows;
  if (fortran && shape.length === 2) {
    const c = new Float64Array(n);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) c[i * cols + j] = data[j * rows + i]!;
    return { data: c, rows, cols };
  }
  if (fortran && shape.length > 2) throw new Error('npy: Fortran-order arrays of rank > 2 are not supported');
  return { data, rows, cols };
}

export function parseCsv(text: string): Matrix {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const cells = lines.map((l) => l.split(/[,;\t]/).map((c) => c.trim()));
  if (cells.length && cells[0]!.some((c) => c !== '' && Number.isNaN(Number(c)))) cells.shift();
  if (!cells.length) throw new Error('csv: no numeric rows');
  const cols = cells[0]!.length;
  const data = new Float64Array(cells.length * cols);
  cells.forEach((r, i) => {
    if (r.length !== cols) throw new Error(`csv: row ${i + 1} has ${r.length} values, the first has ${cols}`);
    r.forEach((c, j) => {
      const v = Number(c);
      if (c === '' || Number.isNaN(v)) throw new Error(`csv: row ${i + 1}, column ${j + 1}: '${c}' is not a number`);
      data[i * cols + j] = v;
    });
  });
  return { data, rows: cells.length, cols };
}

export async function parseSafetensorsMatrix(bytes: Uint8Array, name?: string): Promise<Matrix> {
  const f = await SafetensorsFile.open(new BytesSource(bytes));
  try {
    const names = f.names();
    const n = name ?? names[0];
    if (!n) throw new Error('safetensors: the file holds no tensor');
    const t = await f.load(n, await initBackend('js'), { dtype: 'f32' });
    const rows = t.shape[0] ?? 1;
    const m = { data: Float64Array.from(t.dataSync()), rows, cols: t.size / rows };
    t.dispose();
    return m;
  } finally {
    await f.close();
  }
}

/** By file name: .npy, .csv/.tsv/.txt, .safetensors (`tensor` picks one by name). */
export async function parseMatrixFile(fileName: string, bytes: Uint8Array, tensorName?: string): Promise<Matrix> {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.npy')) return parseNpy(bytes);
  if (lower.endsWith('.safetensors')) return parseSafetensorsMatrix(bytes, tensorName);
  if (/\.(csv|tsv|txt)$/.test(lower)) return parseCsv(new TextDecoder().decode(bytes));
  throw new Error(`${fileName}: unknown matrix format (use .npy, .csv or .safetensors)`);
}
