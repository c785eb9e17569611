// Generator of the activation-sparsity products (WebAssembly text), the decode-time kernels that
// turn zero activations into weight rows not read:
//   sp_rows    y [M, N] = x [M, K] · w [K, N]; per row of x, the non-zero entries are listed first
//              (address of their weight row, value), then the listed rows of w are added into y four
//              at a time (four sequential streams, y kept in L1). Columns of y are split over tasks.
//              A linear layer stored [in, out]: the down projection after a sparse activation, or
//              any projection whose input was thresholded.
//   sp_masked  y [M, N] = mask ≠ 0 ? x · w[n]ᵀ : 0 with w [N, K]; the kept n are listed, then four
//              rows of w at a time meet x in dot products. Rows of w are split over tasks. A linear
//              layer stored [out, in]: the up projection of a gated MLP where the gate was zeroed.
// Each export is `(params, task, nTasks)`; parameter block P below (byte addresses, i32 fields);
// `list` is scratch of `listStride` bytes per task. Both need N (sp_rows) or K (sp_masked) to be
// a multiple of 4; the runtime (ops/sparse.ts) sends other shapes to the reference kernels.
// A zero is skipped exactly as the reference does: x[m, k] == 0 (also -0) adds nothing, NaN counts
// as non-zero.

export const name = 'sparse';
export const exportNames = ['sp_rows', 'sp_masked'];

/** Parameter block, i32 fields at these byte offsets. */
export const P = { M: 0, N: 4, K: 8, x: 12, w: 16, y: 20, mask: 24, list: 28, listStride: 32 };
export const constants = { P };

const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const i32 = (n) => `(i32.const ${n})`;
const add = (a, b) => `(i32.add ${a} ${b})`;
const mul = (a, b) => `(i32.mul ${a} ${b})`;
const ld = (f) => `(i32.load offset=${P[f]} ${g('p')})`;
const hsum = (v) => `(f32.add (f32.add (f32x4.extract_lane 0 ${v}) (f32x4.extract_lane 1 ${v})) (f32.add (f32x4.extract_lane 2 ${v}) (f32x4.extract_lane 3 ${v})))`;
const locals = (names, type) => names.map((n) => `(local $${n} ${type})`).join(' ');
const R = [0, 1, 2, 3];

function spRows(madd) {
  // inner loop: y[o] += a0·w0[o] + a1·w1[o] + a2·w2[o] + a3·w3[o] over this task's columns
  const group = R.map((j) => `${set(`p${j}`, `(i32.load offset=${8 * j} ${g('e')})`)} ${set(`a${j}`, `(f32x4.splat (f32.load offset=${8 * j + 4} ${g('e')}))`)}`).join('\n          ');
  let acc = `(v128.load ${add(g('yr'), g('o'))})`;
  for (const j of R) acc = madd(g(`a${j}`), `(v128.load ${add(g(`p${j}`), g('o'))})`, acc);
  return `
  (func $sp_rows (param $p i32) (param $task i32) (param $nTasks i32)
    ${locals(['M', 'N', 'K', 'x', 'w', 'y', 'list', 'n0', 'n1', 'rb', 'm', 'k', 'cnt', 'xr', 'yr', 'i', 'e', 'o', 'p0', 'p1', 'p2', 'p3', 'n4'], 'i32')}
    ${locals(['a0', 'a1', 'a2', 'a3'], 'v128')} (local $a f32)
    ${set('M', ld('M'))} ${set('N', ld('N'))} ${set('K', ld('K'))} ${set('x', ld('x'))} ${set('w', ld('w'))} ${set('y', ld('y'))}
    ${set('list', add(ld('list'), mul(g('task'), ld('listStride'))))}
    ${set('n4', `(i32.shr_u ${g('N')} ${i32(2)})`)}
    ${set('n0', `(i32.shl (i32.div_u ${mul(g('n4'), g('task'))} ${g('nTasks')}) ${i32(4)})`)}
    ${set('n1', `(i32.shl (i32.div_u ${mul(g('n4'), add(g('task'), i32(1)))} ${g('nTasks')}) ${i32(4)})`)}
    ${set('rb', `(i32.shl ${g('N')} ${i32(2)})`)}
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${g('m')} ${g('M')}))
      ${set('xr', add(g('x'), mul(g('m'), `(i32.shl ${g('K')} ${i32(2)})`)))}
      ${set('yr', add(g('y'), mul(g('m'), g('rb'))))}
      ;; list the non-zero activations of this row: (address of the weight row, value)
      ${set('cnt', i32(0))} ${set('k', i32(0))}
      (block $scan_done (loop $scan
        (br_if $scan_done (i32.ge_u ${g('k')} ${g('K')}))
        ${set('a', `(f32.load ${add(g('xr'), `(i32.shl ${g('k')} ${i32(2)})`)})`)}
        (if (f32.ne ${g('a')} (f32.const 0)) (then
          (i32.store ${add(g('list'), `(i32.shl ${g('cnt')} ${i32(3)})`)} ${add(g('w'), mul(g('k'), g('rb')))})
          (f32.store offset=4 ${add(g('list'), `(i32.shl ${g('cnt')} ${i32(3)})`)} ${g('a')})
          ${set('cnt', add(g('cnt'), i32(1)))}))
        ${set('k', add(g('k'), i32(1)))}
        (br $scan)))
      ;; y = 0 over this task's columns
      ${set('o', g('n0'))}
      (block $zero_done (loop $zero
        (br_if $zero_done (i32.ge_u ${g('o')} ${g('n1')}))
        (v128.store ${add(g('yr'), g('o'))} (v128.const i32x4 0 0 0 0))
        ${set('o', add(g('o'), i32(16)))}
        (br $zero)))
      ;; four listed rows at a time
      ${set('i', i32(0))}
      (block $quads_done (loop $quads
        (br_if $quads_done (i32.gt_u ${add(g('i'), i32(4))} ${g('cnt')}))
        ${set('e', add(g('list'), `(i32.shl ${g('i')} ${i32(3)})`))}
          ${group}
        ${set('o', g('n0'))}
        (block $cols_done (loop $cols
          (br_if $cols_done (i32.ge_u ${g('o')} ${g('n1')}))
          (v128.store ${add(g('yr'), g('o'))} ${acc})
          ${set('o', add(g('o'), i32(16)))}
          (br $cols)))
        ${set('i', add(g('i'), i32(4)))}
        (br $quads)))
      ;; the rest one by one
      (block $ones_done (loop $ones
        (br_if $ones_done (i32.ge_u ${g('i')} ${g('cnt')}))
        ${set('e', add(g('list'), `(i32.shl ${g('i')} ${i32(3)})`))}
        ${set('p0', `(i32.load ${g('e')})`)} ${set('a0', `(f32x4.splat (f32.load offset=4 ${g('e')}))`)}
        ${set('o', g('n0'))}
        (block $cols1_done (loop $cols1
          (br_if $cols1_done (i32.ge_u ${g('o')} ${g('n1')}))
          (v128.store ${add(g('yr'), g('o'))} ${madd(g('a0'), `(v128.load ${add(g('p0'), g('o'))})`, `(v128.load ${add(g('yr'), g('o'))})`)})
          ${set('o', add(g('o'), i32(16)))}
          (br $cols1)))
        ${set('i', add(g('i'), i32(1)))}
        (br $ones)))
      ${set('m', add(g('m'), i32(1)))}
      (br $rows))))`;
}

function spMasked(madd) {
  const ptrs = R.map((j) => set(`p${j}`, add(g('w'), mul(`(i32.load offset=${4 * j} ${g('e')})`, g('kb'))))).join(' ');
  const dots = R.map((j) => set(`c${j}`, madd(g('xv'), `(v128.load ${add(g(`p${j}`), g('o'))})`, g(`c${j}`)))).join('\n          ');
  const stores = R.map((j) => `(f32.store ${add(g('yr'), `(i32.shl (i32.load offset=${4 * j} ${g('e')}) ${i32(2)})`)} ${hsum(g(`c${j}`))})`).join('\n        ');
  const zero = R.map((j) => set(`c${j}`, '(v128.const i32x4 0 0 0 0)')).join(' ');
  return `
  (func $sp_masked (param $p i32) (param $task i32) (param $nTasks i32)
    ${locals(['M', 'N', 'K', 'x', 'w', 'y', 'mask', 'list', 'n0', 'n1', 'kb', 'm', 'n', 'cnt', 'xr', 'mr', 'yr', 'i', 'e', 'o', 'p0', 'p1', 'p2', 'p3'], 'i32')}
    ${locals(['c0', 'c1', 'c2', 'c3', 'xv'], 'v128')}
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
      ;; four kept rows of w at a time against x
      ${set('i', i32(0))}
      (block $quads_done (loop $quads
        (br_if $quads_done (i32.gt_u ${add(g('i'), i32(4))} ${g('cnt')}))
        ${set('e', add(g('list'), `(i32.shl ${g('i')} ${i32(2)})`))}
        ${ptrs}
        ${zero}
        ${set('o', i32(0))}
        (block $k_done (loop $k
          (br_if $k_done (i32.ge_u ${g('o')} ${g('kb')}))
          ${set('xv', `(v128.load ${add(g('xr'), g('o'))})`)}
          ${dots}
          ${set('o', add(g('o'), i32(16)))}
          (br $k)))
        ${stores}
        ${set('i', add(g('i'), i32(4)))}
        (br $quads)))
      (block $ones_done (loop $ones
        (br_if $ones_done (i32.ge_u ${g('i')} ${g('cnt')}))
        ${set('e', add(g('list'), `(i32.shl ${g('i')} ${i32(2)})`))}
        ${set('p0', add(g('w'), mul(`(i32.load ${g('e')})`, g('kb'))))}
        ${set('c0', '(v128.const i32x4 0 0 0 0)')}
        ${set('o', i32(0))}
        (block $k1_done (loop $k1
          (br_if $k1_done (i32.ge_u ${g('o')} ${g('kb')}))
          ${set('c0', madd(`(v128.load ${add(g('xr'), g('o'))})`, `(v128.load ${add(g('p0'), g('o'))})`, g('c0')))}
          ${set('o', add(g('o'), i32(16)))}
          (br $k1)))
        (f32.store ${add(g('yr'), `(i32.shl (i32.load ${g('e')}) ${i32(2)})`)} ${hsum(g('c0'))})
        ${set('i', add(g('i'), i32(1)))}
        (br $ones)))
      ${set('m', add(g('m'), i32(1)))}
      (br $rows))))`;
}

/** @param {{relaxed: boolean}} variant */
export function generate({ relaxed }) {
  const madd = (a, b, c) => (relaxed ? `(f32x4.relaxed_madd ${a} ${b} ${c})` : `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`);
  const out = ['(module', '  (import "env" "memory" (memory 1 65536 shared))', spRows(madd), spMasked(madd)];
  for (const e of exportNames) out.push(`  (export "${e}" (func $${e}))`);
  out.push(')');
  return out.join('\n');
}
