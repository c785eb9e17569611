// scatterAdd of many indices into few target rows (an embedding's gradient: 16,384 token or
// position ids into 65 or 256 rows of 384), parallel over the indices in two passes: the ids are
// cut into chunks; a workgroup adds its chunk's source rows into a window of target rows held in
// workgroup memory (one column per thread, so no accumulator is shared and no atomics are needed)
// and writes the window to a temporary of chunk partials; a second pass adds the partials to the
// target in chunk order, so the result does not depend on scheduling. Not for: integer targets or
// shapes whose partials would be large (nn.ts's scatterAdd: one thread per output element).
import type { OpDesc } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, type Dense, type OpContext } from './context.js';
import { PRELUDE, cdiv, inBinding, loaders, outBinding, storers } from '../wgsl.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;
const WG = 256;
/** Ids per chunk at most (a workgroup holds its chunk's ids in workgroup memory). */
const CHUNK = 256;
/** Columns per workgroup of the first pass (one thread each). */
const COLS = 64;
/** Target rows per workgroup of the first pass: a window of [ROWS, COLS] f32 in workgroup memory (8 KB). */
const ROWS = 32;
/** The largest temporary of chunk partials, bytes. */
const MAX_PARTIALS = 32 << 20;

/**
 * Chunks the ids are cut into: one per CHUNK ids, where their partials fit in MAX_PARTIALS; else 1
 * (the one-pass kernel), since fewer chunks would hold more ids than a workgroup keeps.
 */
export function scatterChunks(rows: number, rowLen: number, m: number): number {
  const chunks = Math.ceil(m / CHUNK);
  return chunks * rows * rowLen * 4 <= MAX_PARTIALS ? chunks : 1;
}

/** y = target + the rows of src added at ids, for float targets, in `chunks` chunks of ids (see the header). */
export function scatterAddChunked(ctx: OpContext<Op<'scatterAdd'>>, td: Dense, id: Dense, sd: Dense, yd: Dense, rows: number, rowLen: number, m: number, chunks: number): void {
  const chunk = Math.ceil(m / chunks);
  const windows = Math.ceil(rows / ROWS);
  const tiles = Math.ceil(rowLen / COLS);
  const part = ctx.temp(chunks * rows * rowLen * 4); // f32 [chunks, rows, rowLen]
  const k1 = ctx.kernel(`scatterAdd chunks ${id.dtype} ${sd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'ids')}
${inBinding(2, 's')}
${outBinding(3, 'part', 'f32')}
${loaders('ids', id.dtype)}
${loaders('s', sd.dtype)}
${storers('part', 'f32')}
var<workgroup> ids_w: array<i32, ${CHUNK}>;
var<workgroup> acc: array<f32, ${ROWS * COLS}>;
@compute @workgroup_size(${COLS})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  // P: rows, rowLen, m, chunk, idsOff, sOff, windows, tiles
  let rows = P[0]; let len = P[1]; let chunk = P[3]; let windows = P[6]; let tiles = P[7];
  let tile = wg % tiles; let w = (wg / tiles) % windows; let c = wg / (tiles * windows);
  let valid = c * chunk < P[2];
  let i0 = c * chunk;
  let n = select(0u, min(chunk, P[2] - i0), valid);
  let r0 = i32(w * ${ROWS}u);
  let col = tile * ${COLS}u + li;
  // the chunk's ids, as rows of this window (-1: another window's, or out of range)
  for (var k = li; k < ${CHUNK}u; k += ${COLS}u) {
    var r = -1;
    if (k < n) {
      let id = ldi_ids(P[4] + i0 + k);
      if (id >= r0 && id < r0 + ${ROWS} && u32(id) < rows) { r = id - r0; }
    }
    ids_w[k] = r;
  }
  for (var r = 0u; r < ${ROWS}u; r++) { acc[r * ${COLS}u + li] = 0.0; }
  workgroupBarrier();
  if (col < len) {
    for (var k = 0u; k < n; k++) {
      let r = ids_w[k];
      if (r >= 0) { acc[u32(r) * ${COLS}u + li] += ldf_s(P[5] + (i0 + k) * len + col); }
    }
    if (valid) {
      for (var r = 0u; r < ${ROWS}u && u32(r0) + r < rows; r++) { stf_part((c * rows + u32(r0) + r) * len + col, acc[r * ${COLS}u + li]); }
    }
  }
}`);
  ctx.run(k1, [id.gpu, sd.gpu, part.gpu], new Params().u32(rows, rowLen, m, chunk, id.offset, sd.offset, windows, tiles), [chunks * windows * tiles]);
  const k2 = ctx.kernel(`scatterAdd sum ${td.dtype}>${yd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 't')}
${inBinding(2, 'part')}
${outBinding(3, 'y', yd.dtype)}
${loaders('t', td.dtype)}
${loaders('part', 'f32')}
${storers('y', yd.dtype)}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  // P: n (rows · rowLen), chunks, tOff, yOff
  let e = wg * ${WG}u + li;
  let n = P[0];
  if (e >= n) { return; }
  var s = ldf_t(P[2] + e);
  for (var c = 0u; c < P[1]; c++) { s = s + ldf_part(c * n + e); }
  stf_y(P[3] + e, s);
}`);
  ctx.run(k2, [td.gpu, part.gpu, yd.gpu], new Params().u32(rows * rowLen, chunks, td.offset, yd.offset), [cdiv(rows * rowLen, WG)]);
}
