// Exact entries (outliers, and a sink row's every value) in the packed KV-cache attention module:
// written over the decoded f32 values of their row. Entries live in the stream's outlier buffer
// (channel u16 at `ov`, value f32 at `oval`), a row's entries in channel order from rowptr[row]
// (layout: src/models/kvquant/codec.ts). Here: the WAT to read and write one entry, the per-row
// fragment of $dec_rows (kvattn-rows.mjs) and $sparse_block (a one-sequence block in one pass).
// Not for: the dense decode.
import { g, i32, inc, set } from './wat-text.mjs';

/** Channel (u16) of entry e. */
export const exactChan = (e) => `(i32.load16_u (i32.add ${g('ov')} (i32.shl ${e} ${i32(1)})))`;
/** Value (f32) of entry e; `oval` the values' address. */
export const exactVal = (e, oval = g('oval')) => `(f32.load (i32.add ${oval} (i32.shl ${e} ${i32(2)})))`;
/** f32 base[k] = the value of entry e. */
export const putExact = (base, k, e, oval) => `(f32.store (i32.add ${base} (i32.shl ${k} ${i32(2)})) ${exactVal(e, oval)})`;

/**
 * $dec_rows' fragment, after one row's decode (o just past it): the row's entries inside
 * [c0, c0 + n) written over out's row (lt = o − 4n). A row's entries are in channel order, so a
 * count (or, in long runs, a binary search) finds the first, and the run ends at the first past
 * the slice.
 */
export const EXACT_ROW = `
        (if (i32.and ${g('sparse')} (i32.eqz ${g('blk')})) (then
          ${set('e', `(i32.load ${g('rp')})`)} ${set('e1', `(i32.load offset=4 ${g('rp')})`)}
          (if ${g('segx')} (then
            ;; the slice is one segment: its entries are exactly [rowptr + seg[h], the next segment's
            ;; start). A slice holds 0, 1 or 2 of them nearly always: those two are written without a
            ;; branch on the count (a store to the dummy slot where there is none; index 0 is read
            ;; then, always inside the buffer), a loop takes the rare rest
            (if ${g('s1b')} (then ${set('e1', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s1b')})))`)}))
            ${set('e', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s0b')})))`)}
            ${set('len', `(i32.sub ${g('e1')} ${g('e')})`)}
            ${set('lt', `(i32.sub ${g('o')} (i32.shl ${g('n')} ${i32(2)}))`)}
            ${[0, 1].map((u) => `
            ${set('k', `(select ${u ? `(i32.add ${g('e')} ${i32(u)})` : g('e')} ${i32(0)} (i32.gt_u ${g('len')} ${i32(u)}))`)}
            (f32.store (select (i32.add ${g('lt')} (i32.shl (i32.sub ${exactChan(g('k'))} ${g('c0')}) ${i32(2)})) ${g('dm')} (i32.gt_u ${g('len')} ${i32(u)}))
              ${exactVal(g('k'))})`).join('')}
            (if (i32.gt_u ${g('len')} ${i32(2)}) (then
              ${inc('e', 2)}
              ${runToSliceEnd('x')})))
          (else
          ;; with a segment index the slice's segments bound the run (no scan of the row's others)
          (if ${g('segs')} (then
            (if ${g('s1b')} (then ${set('e1', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s1b')})))`)}))
            ${set('e', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s0b')})))`)}))
          ${set('len', `(i32.sub ${g('e1')} ${g('e')})`)}
          ;; a short run: count the entries before the slice (independent loads, no chain of them)
          (if (i32.le_u ${g('len')} ${i32(32)}) (then
            ${set('k', g('e'))}
            (block $cd (loop $cl
              (br_if $cd (i32.ge_u ${g('k')} ${g('e1')}))
              ${set('e', `(i32.add ${g('e')} (i32.lt_u ${exactChan(g('k'))} ${g('c0')}))`)}
              ${inc('k', 1)}
              (br $cl)))
            ${set('len', i32(0))}))
          (block $bd (loop $bl
            (br_if $bd (i32.eqz ${g('len')}))
            ${set('k', `(i32.add ${g('e')} (i32.shr_u ${g('len')} ${i32(1)}))`)}
            ${set('lt', `(i32.lt_u ${exactChan(g('k'))} ${g('c0')})`)}
            ${set('e', `(select (i32.add ${g('k')} ${i32(1)}) ${g('e')} ${g('lt')})`)}
            ${set('len', `(select (i32.sub (i32.sub ${g('len')} (i32.shr_u ${g('len')} ${i32(1)})) ${i32(1)}) (i32.shr_u ${g('len')} ${i32(1)}) ${g('lt')})`)}
            (br $bl)))
          ${set('lt', `(i32.sub ${g('o')} (i32.shl ${g('n')} ${i32(2)}))`)}
          ${runToSliceEnd('e')}))))`;

/** Entries e .. e1 − 1 written over the row at lt while they lie inside the slice (labels $<p>d, $<p>l). */
function runToSliceEnd(p) {
  return `(block $${p}d (loop $${p}l
            (br_if $${p}d (i32.ge_u ${g('e')} ${g('e1')}))
            ${set('k', `(i32.sub ${exactChan(g('e'))} ${g('c0')})`)}
            (br_if $${p}d (i32.ge_u ${g('k')} ${g('n')}))
            ${putExact(g('lt'), g('k'), g('e'))}
            ${inc('e', 1)}
            (br $${p}l)))`;
}

// Exact entries of rows row0 .. row0 + nr − 1 (one sequence: consecutive rows) inside [c0, c0 + n),
// written over out [nr, n]: the block's entries are one run from rowptr[row0] to rowptr[row0 + nr];
// each one in the slice finds its row by a cursor that only moves forward.
export const SPARSE_BLOCK = `
  (func $sparse_block (param $rp i32) (param $nr i32) (param $ov i32) (param $oval i32) (param $c0 i32) (param $n i32) (param $out i32)
    (local $e i32) (local $e1 i32) (local $k i32) (local $r i32)
    ${set('e', `(i32.load ${g('rp')})`)} ${set('e1', `(i32.load (i32.add ${g('rp')} (i32.shl ${g('nr')} ${i32(2)})))`)}
    (block $ed (loop $el
      (br_if $ed (i32.ge_u ${g('e')} ${g('e1')}))
      ${set('k', `(i32.sub ${exactChan(g('e'))} ${g('c0')})`)}
      (if (i32.lt_u ${g('k')} ${g('n')}) (then
        (block $rd (loop $rl
          (br_if $rd (i32.gt_u (i32.load offset=4 (i32.add ${g('rp')} (i32.shl ${g('r')} ${i32(2)}))) ${g('e')}))
          ${inc('r', 1)}
          (br $rl)))
        ${putExact(g('out'), `(i32.add (i32.mul ${g('r')} ${g('n')}) ${g('k')})`, g('e'))}))
      ${inc('e', 1)}
      (br $el))))`;
