// Generator of the activation-sparsity products (WebAssembly text), the decode-time kernels that
// turn zero activations into weight rows not read:
//   sp_rows      y [M, N] = x [M, K] · w [K, N]. Rows of w are split over tasks; a task lists the
//                kept x[m, k] of its rows (address of weight row k, value): non-zero and, with
//                thresholds t [K], |x[m, k]| >= t[k] (the threshold fused into the product, so no
//                thresholded copy of x is made). It then adds the listed rows into its output
//                ROW_STREAMS at a time (task 0 into y, task t into partial t).
//   sp_rows_sum  y += the partials of tasks 1..nParts (called by the last task of sp_rows to finish:
//                the runtime zeroes the `sync` counter, each task adds 1 when done).
//                A linear layer stored [in, out]: the down projection after a sparse activation, or
//                a projection whose input is thresholded (TEAL, CHESS+'s attention inputs).
//   sp_masked    y [M, N] = mask ≠ 0 ? x · w[n]ᵀ : 0 with w [N, K]. Rows of w are split over tasks;
//                a task lists its kept n, then MASKED_STREAMS rows of w at a time meet x in dot
//                products. A linear layer stored [out, in]: the up projection of a gated MLP where
//                the gate is 0.
// The S rows read together are list entries i, q+i, 2q+i, ... (q = count / S): S forward streams
// through separate parts of w. A listed row is a short run (4 KiB for 1,024 outputs) that starts
// at a gap the prefetchers did not foresee, so what limits the product is how many of those starts
// are in flight at once: for rows of 4 KiB, 8 streams keep a skip of 30% of the rows at ~0.75-0.9
// of the dense time where 4 streams took as long as the dense product. Rows of 8 KiB and more
// (sp_rows_long: q, k, v or gate and up side by side) skip at nearly their share with 4 streams,
// which cost fewer adds per vector (bench/RESULTS.md, "Activation sparsity").
// Each export is `(params, task, nTasks)`; parameter block P below (byte addresses, i32 fields);
// `list` is scratch of `listStride` bytes per task, `part` of (nTasks - 1)·M·N floats; `t` points at
// the thresholds, `tStep` is 4 (one per row of w) or 0 (one value, e.g. a zero: no threshold). N
// (sp_rows) or K (sp_masked) must be a multiple of 4; the runtime (ops/sparse.ts) sends other
// shapes to the reference kernels. A zero is skipped exactly as the reference does: x == 0 (also
// -0) adds nothing, NaN counts as non-zero and is never below a threshold.

export const name = 'sparse';
export const exportNames = ['sp_rows', 'sp_rows_long', 'sp_rows_sum', 'sp_masked'];

/** Parameter block, i32 fields at these byte offsets. */
export const P = { M: 0, N: 4, K: 8, x: 12, w: 16, y: 20, mask: 24, list: 28, listStride: 32, part: 36, nParts: 40, t: 44, tStep: 48, sync: 52 };

const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const i32 = (n) => `(i32.const ${n})`;
const add = (a, b) => `(i32.add ${a} ${b})`;
const mul = (a, b) => `(i32.mul ${a} ${b})`;
const ld = (f) => `(i32.load offset=${P[f]} ${g('p')})`;
const hsum = (v) => `(f32.add (f32.add (f32x4.extract_lane 0 ${v}) (f32x4.extract_lane 1 ${v})) (f32.add (f32x4.extract_lane 2 ${v}) (f32x4.extract_lane 3 ${v})))`;
const locals = (names, type) => names.map((n) => `(local $${n} ${type})`).join(' ');
/**
 * Rows read at once (streams) and vectors per stream per loop step: sp_rows (short rows: below
 * LONG_ROW_BYTES), sp_rows_long (long rows: fewer streams do, and cost less to add up) and sp_masked.
 */
export const ROW_STREAMS = 8;
export const LONG_ROW_STREAMS = 4;
export const LONG_ROW_BYTES = 8192;
export const MASKED_STREAMS = 4;
const ROW_UNROLL = 4;
const LONG_ROW_UNROLL = 8;
const UNROLL = 4;
export const constants = { P, LONG_ROW_BYTES };

/**
 * `(loop over o in [from, to) step 16·U, then step 16)` running `body(offsetBytes)` for U vectors and
 * then for the tail vectors one at a time.
 */
function cols(label, from, to, body, U = UNROLL) {
  const main = Array.from({ length: U }, (_, u) => body(16 * u)).join('\n            ');
  return `${set('o', from)}
        (block $${label}_done (loop $${label}
          (br_if $${label}_done (i32.gt_u ${add(g('o'), i32(16 * U))} ${to}))
            ${main}
          ${set('o', add(g('o'), i32(16 * U)))}
          (br $${label})))
        (block $${label}_t_done (loop $${label}_t
          (br_if $${label}_t_done (i32.ge_u ${g('o')} ${to}))
            ${body(0)}
          ${set('o', add(g('o'), i32(16)))}
          (br $${label}_t)))`;
}

function spRows(madd, fname, STREAMS, ROW_UNROLL) {
  // Rows of w are split over tasks; task 0 writes y, task t > 0 its partial (summed by sp_rows_sum).
  // S streams: the listed rows i, q+i, 2q+i, ... (q = cnt/S) move forward through w together.
  const R = [...Array(STREAMS).keys()];
  const group = R.map((j) => `${set(`e`, add(g('list'), `(i32.shl ${add(g('i'), mul(g('q'), i32(j)))} ${i32(3)})`))} ${set(`p${j}`, `(i32.load ${g('e')})`)} ${set(`a${j}`, `(f32x4.splat (f32.load offset=4 ${g('e')}))`)}`).join('\n        ');
  // S rows into the output row, U vectors per step; the row pointers and the output pointer move
  // (immediate offsets, no address add per load), then the tail vectors one at a time
  const quadVec = (off) => {
    let acc = `(v128.load offset=${off} ${g('yo')})`;
    for (const j of R) acc = madd(g(`a${j}`), `(v128.load offset=${off} ${g(`p${j}`)})`, acc);
    return `(v128.store offset=${off} ${g('yo')} ${acc})`;
  };
  const advance = (bytes) => `${R.map((j) => set(`p${j}`, add(g(`p${j}`), i32(bytes)))).join(' ')} ${set('yo', add(g('yo'), i32(bytes)))}`;
  const quadRow = `${set('yo', g('yr'))} ${set('yu', add(g('yr'), `(i32.and ${g('rb')} ${i32(-16 * ROW_UNROLL)})`))} ${set('ye', add(g('yr'), g('rb')))}
        (block $c4_done (loop $c4
          (br_if $c4_done (i32.ge_u ${g('yo')} ${g('yu')}))
          ${Array.from({ length: ROW_UNROLL }, (_, u) => quadVec(16 * u)).join('\n          ')}
          ${advance(16 * ROW_UNROLL)}
          (br $c4)))
        (block $c4t_done (loop $c4t
          (br_if $c4t_done (i32.ge_u ${g('yo')} ${g('ye')}))
          ${quadVec(0)}
          ${advance(16)}
          (br $c4t)))`;
  const one = (off) => `(v128.store offset=${off} ${add(g('yr'), g('o'))} ${madd(g('a0'), `(v128.load offset=${off} ${add(g('p0'), g('o'))})`, `(v128.load offset=${off} ${add(g('yr'), g('o'))})`)})`;
  const zero = (off) => `(v128.store offset=${off} ${add(g('yr'), g('o'))} (v128.const i32x4 0 0 0 0))`;
  return `
  (func $${fname} (param $p i32) (param $task i32) (param $nTasks i32)
    ${locals(['M', 'N', 'K', 'x', 'w', 'y', 'list', 'k0', 'k1', 'rb', 'm', 'k', 'cnt', 'q', 'xr', 'yr', 'i', 'e', 'o', 't', 'tStep', 'yo', 'yu', 'ye', ...R.map((j) => `p${j}`)], 'i32')}
    ${locals(R.map((j) => `a${j}`), 'v128')} (local $a f32)
    ${set('t', ld('t'))} ${set('tStep', ld('tStep'))}
    ${set('M', ld('M'))} ${set('N', ld('N'))} ${set('K', ld('K'))} ${set('x', ld('x'))} ${set('w', ld('w'))}
    ${set('rb', `(i32.shl ${g('N')} ${i32(2)})`)}
    ;; task 0 writes y, task t its partial [M, N] at part + (t - 1)·M·N·4
    ${set('y', `(if (result i32) ${g('task')} (then ${add(ld('part'), mul(`(i32.sub ${g('task')} ${i32(1)})`, mul(g('M'), g('rb'))))}) (else ${ld('y')}))`)}
    ${set('list', add(ld('list'), mul(g('task'), ld('listStride'))))}
    ${set('k0', `(i32.div_u ${mul(g('K'), g('task'))} ${g('nTasks')})`)}
    ${set('k1', `(i32.div_u ${mul(g('K'), add(g('task'), i32(1)))} ${g('nTasks')})`)}
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${g('m')} ${g('M')}))
      ${set('xr', add(g('x'), mul(g('m'), `(i32.shl ${g('K')} ${i32(2)})`)))}
      ${set('yr', add(g('y'), mul(g('m'), g('rb'))))}
      ;; list the kept activations of this task's rows (non-zero, not below the row's threshold):
      ;; (address of the weight row, value)
      ${set('cnt', i32(0))} ${set('k', g('k0'))}
      (block $scan_done (loop $scan
        (br_if $scan_done (i32.ge_u ${g('k')} ${g('k1')}))
        ${set('a', `(f32.load ${add(g('xr'), `(i32.shl ${g('k')} ${i32(2)})`)})`)}
        (if (i32.and (f32.ne ${g('a')} (f32.const 0))
              (i32.eqz (f32.lt (f32.abs ${g('a')}) (f32.load ${add(g('t'), mul(g('k'), g('tStep')))})))) (then
          (i32.store ${add(g('list'), `(i32.shl ${g('cnt')} ${i32(3)})`)} ${add(g('w'), mul(g('k'), g('rb')))})
          (f32.store offset=4 ${add(g('list'), `(i32.shl ${g('cnt')} ${i32(3)})`)} ${g('a')})
          ${set('cnt', add(g('cnt'), i32(1)))}))
        ${set('k', add(g('k'), i32(1)))}
        (br $scan)))
      ${cols('zero', i32(0), g('rb'), zero)}
      ${set('q', `(i32.div_u ${g('cnt')} ${i32(STREAMS)})`)} ${set('i', i32(0))}
      (block $quads_done (loop $quads
        (br_if $quads_done (i32.ge_u ${g('i')} ${g('q')}))
        ${group}
        ${quadRow}
        ${set('i', add(g('i'), i32(1)))}
        (br $quads)))
      ;; the rest (cnt mod S) one by one
      ${set('i', mul(g('q'), i32(STREAMS)))}
      (block $ones_done (loop $ones
        (br_if $ones_done (i32.ge_u ${g('i')} ${g('cnt')}))
        ${set('e', add(g('list'), `(i32.shl ${g('i')} ${i32(3)})`))}
        ${set('p0', `(i32.load ${g('e')})`)} ${set('a0', `(f32x4.splat (f32.load offset=4 ${g('e')}))`)}
        ${cols('c1', i32(0), g('rb'), one)}
        ${set('i', add(g('i'), i32(1)))}
        (br $ones)))
      ${set('m', add(g('m'), i32(1)))}
      (br $rows)))
    ;; the last task to finish adds the partials into y (one pool call per product, not two)
    (if (i32.eqz ${ld('nParts')}) (then (return)))
    (if (i32.ne (i32.atomic.rmw.add offset=${P.sync} ${g('p')} ${i32(1)}) (i32.sub ${g('nTasks')} ${i32(1)})) (then (return)))
    (call $sp_rows_sum ${g('p')} ${i32(0)} ${i32(1)}))`;
}

function spRowsSum() {
  return `
  ;; y += the partials of tasks 1 .. nParts, columns of y [M·N] split over tasks
  (func $sp_rows_sum (param $p i32) (param $task i32) (param $nTasks i32)
    ${locals(['n4', 'o', 'end', 'y', 'part', 'stride', 't', 'np'], 'i32')} (local $v v128)
    ${set('n4', `(i32.shr_u ${mul(ld('M'), ld('N'))} ${i32(2)})`)}
    ${set('o', `(i32.shl (i32.div_u ${mul(g('n4'), g('task'))} ${g('nTasks')}) ${i32(4)})`)}
    ${set('end', `(i32.shl (i32.div_u ${mul(g('n4'), add(g('task'), i32(1)))} ${g('nTasks')}) ${i32(4)})`)}
    ${set('y', ld('y'))} ${set('part', ld('part'))} ${set('np', ld('nParts'))}
    ${set('stride', `(i32.shl ${mul(ld('M'), ld('N'))} ${i32(2)})`)}
    (block $done (loop $cols
      (br_if $done (i32.ge_u ${g('o')} ${g('end')}))
      ${set('v', `(v128.load ${add(g('y'), g('o'))})`)}
      ${set('t', i32(0))}
      (block $t_done (loop $parts
        (br_if $t_done (i32.ge_u ${g('t')} ${g('np')}))
        ${set('v', `(f32x4.add ${g('v')} (v128.load ${add(add(g('part'), mul(g('t'), g('stride'))), g('o'))}))`)}
        ${set('t', add(g('t'), i32(1)))}
        (br $parts)))
      (v128.store ${add(g('y'), g('o'))} ${g('v')})
      ${set('o', add(g('o'), i32(16)))}
      (br $cols))))`;
}

function spMasked(madd) {
  // S streams: the listed rows i, q+i, 2q+i, ... of this task's range, read forward together.
  const STREAMS = MASKED_STREAMS;
  const R = [...Array(STREAMS).keys()];
  const ptrs = R.map((j) => set(`p${j}`, add(g('w'), mul(`(i32.load ${add(g('list'), `(i32.shl ${add(g('i'), mul(g('q'), i32(j)))} ${i32(2)})`)})`, g('kb'))))).join(' ');
  const dots = (off) => {
    const xv = `(v128.load offset=${off} ${add(g('xr'), g('o'))})`;
    return `${set('xv', xv)} ` + R.map((j) => set(`c${j}`, madd(g('xv'), `(v128.load offset=${off} ${add(g(`p${j}`), g('o'))})`, g(`c${j}`)))).join(' ');
  };
  const one = (off) => set('c0', madd(`(v128.load offset=${off} ${add(g('xr'), g('o'))})`, `(v128.load offset=${off} ${add(g('p0'), g('o'))})`, g('c0')));
  const stores = R.map((j) => `(f32.store ${add(g('yr'), `(i32.shl (i32.load ${add(g('list'), `(i32.shl ${add(g('i'), mul(g('q'), i32(j)))} ${i32(2)})`)}) ${i32(2)})`)} ${hsum(g(`c${j}`))})`).join('\n        ');
  const zero = R.map((j) => set(`c${j}`, '(v128.const i32x4 0 0 0 0)')).join(' ');
  return `
  (func $sp_masked (param $p i32) (param $task i32) (param $nTasks i32)
    ${locals(['M', 'N', 'K', 'x', 'w', 'y', 'mask', 'list', 'n0', 'n1', 'kb', 'm', 'n', 'cnt', 'q', 'xr', 'mr', 'yr', 'i', 'e', 'o', ...R.map((j) => `p${j}`)], 'i32')}
    ${locals([...R.map((j) => `c${j}`), 'xv'], 'v128')}
    ${set('M', ld('M'))} ${set('N', ld('N'))} ${set('K', ld('K'))} ${set('x', ld('x'))} ${set('w', ld('w'))} ${set('y', ld('y'))} ${set('mask', ld('mask'))}
    ${set('list', add(ld('list'), mul(g('task'), ld('listStride'))))}
    ${set('n0', `(i32.div_u ${mul(g('N'), g('task'))} ${g('nTasks')})`)}
    ${set('n1', `(i32.div_u ${mul(g('N'), add(g('task'), i32(1)))} ${g('nTasks')})`)}
    ${set('kb', `(i32.shl ${g('K')} ${i32(2)})`)}
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${g('m')} ${g('M')}))
      ${set('xr', add(g('x'), mul(g('m'), g('kb'))))}
      ${set('mr', add(g('mask'), mul(g('m'), `(i32.shl ${g('N')} ${i32(2)})`)))}
      ${set('yr', add(g('y'), mul(g('m'), `(i32.shl ${g('N')} ${i32(2)})`)))}
      ;; list the kept outputs of this task; the others are 0
      ${set('cnt', i32(0))} ${set('n', g('n0'))}
      (block $scan_done (loop $scan
        (br_if $scan_done (i32.ge_u ${g('n')} ${g('n1')}))
        (if (f32.ne (f32.load ${add(g('mr'), `(i32.shl ${g('n')} ${i32(2)})`)}) (f32.const 0))
          (then
            (i32.store ${add(g('list'), `(i32.shl ${g('cnt')} ${i32(2)})`)} ${g('n')})
            ${set('cnt', add(g('cnt'), i32(1)))})
          (else (f32.store ${add(g('yr'), `(i32.shl ${g('n')} ${i32(2)})`)} (f32.const 0))))
        ${set('n', add(g('n'), i32(1)))}
        (br $scan)))
      ${set('q', `(i32.div_u ${g('cnt')} ${i32(STREAMS)})`)} ${set('i', i32(0))}
      (block $quads_done (loop $quads
        (br_if $quads_done (i32.ge_u ${g('i')} ${g('q')}))
        ${ptrs}
        ${zero}
        ${cols('k4', i32(0), g('kb'), dots)}
        ${stores}
        ${set('i', add(g('i'), i32(1)))}
        (br $quads)))
      ${set('i', mul(g('q'), i32(STREAMS)))}
      (block $ones_done (loop $ones
        (br_if $ones_done (i32.ge_u ${g('i')} ${g('cnt')}))
        ${set('e', add(g('list'), `(i32.shl ${g('i')} ${i32(2)})`))}
        ${set('p0', add(g('w'), mul(`(i32.load ${g('e')})`, g('kb'))))}
        ${set('c0', '(v128.const i32x4 0 0 0 0)')}
        ${cols('k1', i32(0), g('kb'), one)}
        (f32.store ${add(g('yr'), `(i32.shl (i32.load ${g('e')}) ${i32(2)})`)} ${hsum(g('c0'))})
        ${set('i', add(g('i'), i32(1)))}
        (br $ones)))
      ${set('m', add(g('m'), i32(1)))}
      (br $rows))))`;
}

/** @param {{relaxed: boolean}} variant */
export function generate({ relaxed }) {
  const madd = (a, b, c) => (relaxed ? `(f32x4.relaxed_madd ${a} ${b} ${c})` : `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`);
  const out = ['(module', '  (import "env" "memory" (memory 1 65536 shared))', spRows(madd, 'sp_rows', ROW_STREAMS, ROW_UNROLL),
    spRows(madd, 'sp_rows_long', LONG_ROW_STREAMS, LONG_ROW_UNROLL), spRowsSum(), spMasked(madd)];
  for (const e of exportNames) out.push(`  (export "${e}" (func $${e}))`);
  out.push(')');
  return out.join('\n');
}
