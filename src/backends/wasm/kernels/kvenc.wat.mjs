// Generator of the packed KV-cache encoder: the new rows of one stream (a layer's keys or values)
// quantized and written where the cache keeps them, in one call per stream and step (layout and
// rules: src/models/kvquant/codec.ts, whose encodeRow is the reference this equals byte for byte).
// For each new row (row = row0 + i, i = t · B + b) the kernel gathers the row's R = kv_head · d
// values from x [B, kv_head, T, d] (strided), then by kind:
//   q8_0 / q4_0   ggml's blocks of 32 (quantize_row_q8_0_ref / q4_0_ref as gguf-quants.ts computes
//                 them, in f64 as JavaScript does): an f16 scale per block
//   uniform / nuq per group of G ('group' params): the group's median (when a threshold τ is set),
//                 values with |x − median| > τ kept exact, min-max of the others -> f16 scale and
//                 offset, codes by rounding (uniform) or the nearest codebook entry (nuq: a sorted
//                 16-entry codebook by a branch-free count of its midpoints below the value, any
//                 other by codec.ts's binary search; the same codes)
//   uniform / nuq per channel ('channel' params): the calibrated scale and offset of each channel
//                 from the stream, values outside the calibrated [lo, hi] kept exact
// A sink row keeps every value exact (its codes are written all the same). Then the row's codes
// are packed (a kv head slice at a time where the stream stores slices), and its row pointer,
// segment index and rotary position written. Exact entries go to the outlier buffer in channel
// order, and, where the stream keeps them a kv head at a time too (HeadEntries), appended to their
// heads' lists; a row starts only while the buffer has room for R more (and every head's list for a
// head's worth), else the call returns early and the caller grows it and calls again from the row
// it reached.
//   kv_encode(params, task, nTasks)   parameter block KVE below; one task
import { F16BITS, NEAREST, NEAREST16, ROUND, SELECT } from './kvenc-rules.mjs';

export const name = 'kvenc';
export const exportNames = ['kv_encode'];

/** Parameter block: i32 fields at byte offsets (x strides in elements), tau an f64; rows/entries written back. */
export const KVE = {
  x: 0, xsb: 4, xsh: 8, xst: 12, B: 16, HKV: 20, T: 24, D: 28,
  main: 32, out: 36, bits: 40, R: 44, params: 48, G: 52, grpBytes: 56, oGrp: 60, oRowptr: 64, sparse: 68,
  segs: 72, oSeg: 76, oPos: 80, oLut: 84, oChan: 88, oVal: 92, slices: 96, sliceBytes: 100, cap: 104,
  /** 0 q8_0, 1 q4_0, 2 uniform, 3 nuq. */
  kind: 108,
  /** f32 [2R]: lo then hi of each channel (values outside are kept exact), or 0. */
  bounds: 112,
  row0: 116, i0: 120, n: 124, nOut: 128, outCap: 132,
  /** i32 [n]: each new row's rotary position (stored when oPos ≠ 0). */
  pos: 136,
  /** u8 [n]: 1 where the new row is a sink (all exact), or 0 for none. */
  sink: 140,
  tab: 144,
  /** f32 [R] row, f32 [2G] median work, u8 [R] codes. */
  scratch: 148,
  tau: 152, hasTau: 160,
  /** Written back: the first row not encoded, the entries held after the call. */
  rowsDone: 164, nOutDone: 168,
  /** f64 [16] work: a 16-entry table's midpoints (codec.ts nearest's comparisons), then +∞. */
  mids: 172,
  /** The stream's entries a kv head at a time (HeadEntries in src/tensor/packed-kv.ts): its address or 0, each head's room, head 0's byte offset. */
  hx: 176, hcap: 180, hat: 184,
  /** 1: the head lists hold rows from row0 + i0 on (a step written again): drop those entries first. */
  htrim: 188,
  BYTES: 192,
};
export const constants = { KVE };

const p = (f) => `(i32.load offset=${KVE[f]} (local.get $prm))`;

const KERNEL = `
  (func $kv_encode (param $prm i32) (param $task i32) (param $nTasks i32)
    (local $B i32) (local $T i32) (local $D i32) (local $HKV i32) (local $R i32) (local $G i32) (local $bits i32) (local $kind i32) (local $top i32)
    (local $main i32) (local $out i32) (local $oval i32) (local $lut i32) (local $nLut i32) (local $tab i32) (local $buf i32) (local $mbuf i32) (local $qb i32)
    (local $i i32) (local $n i32) (local $row i32) (local $t i32) (local $b i32) (local $h i32) (local $c i32) (local $j i32) (local $g i32) (local $c0 i32)
    (local $e i32) (local $eRow i32) (local $src i32) (local $dst i32) (local $ga i32) (local $nG i32) (local $q i32) (local $m i32) (local $hasTau i32)
    (local $S i32) (local $sb i32) (local $slices i32) (local $base i32) (local $bit i32) (local $sh i32) (local $segs i32) (local $Sg i32) (local $bnd i32)
    (local $v f64) (local $med f64) (local $mn f64) (local $mx f64) (local $sc f64) (local $of f64) (local $d f64) (local $id f64) (local $tt f64) (local $tau f64) (local $amax f64) (local $vmax f64) (local $mids i32)
    (local $hx i32) (local $hcap i32) (local $hat i32)
    (local.set $B ${p('B')}) (local.set $T ${p('T')}) (local.set $D ${p('D')}) (local.set $HKV ${p('HKV')})
    (local.set $R ${p('R')}) (local.set $G ${p('G')}) (local.set $bits ${p('bits')}) (local.set $kind ${p('kind')})
    (local.set $top (i32.sub (i32.shl (i32.const 1) (local.get $bits)) (i32.const 1)))
    (local.set $main ${p('main')}) (local.set $out ${p('out')})
    (local.set $oval (i32.add (local.get $out) ${p('oVal')}))
    (local.set $lut (i32.add (local.get $main) ${p('oLut')})) (local.set $nLut (i32.shl (i32.const 1) (local.get $bits)))
    (local.set $tab ${p('tab')})
    (local.set $buf ${p('scratch')})
    (local.set $mbuf (i32.add (local.get $buf) (i32.shl (local.get $R) (i32.const 2))))
    (local.set $qb (i32.add (local.get $mbuf) (i32.shl (local.get $G) (i32.const 3))))
    (local.set $nG (select (i32.div_u (local.get $R) (local.get $G)) (i32.const 0) ${p('params')}))
    (local.set $hasTau ${p('hasTau')}) (local.set $tau (f64.load offset=${KVE.tau} (local.get $prm)))
    (local.set $slices ${p('slices')}) (local.set $sb ${p('sliceBytes')}) (local.set $S (i32.div_u (local.get $R) (local.get $slices)))
    (local.set $segs ${p('segs')}) (local.set $Sg (i32.div_u (local.get $R) (local.get $segs)))
    (local.set $bnd ${p('bounds')})
    (local.set $i ${p('i0')}) (local.set $n ${p('n')}) (local.set $e ${p('nOut')})
    (local.set $hx ${p('hx')}) (local.set $hcap ${p('hcap')}) (local.set $hat ${p('hat')})
    ;; a sorted 16-entry codebook: its midpoints once, codes by $nearest16 (mids stays 0 otherwise)
    (if (i32.and (i32.eq (local.get $kind) (i32.const 3)) (i32.eq (local.get $nLut) (i32.const 16))) (then
      (local.set $mids ${p('mids')})
      (local.set $j (i32.const 0))
      (block $md (loop $ml
        (br_if $md (i32.ge_u (local.get $j) (i32.const 15)))
        (f64.store (i32.add (local.get $mids) (i32.shl (local.get $j) (i32.const 3)))
          (f64.div (f64.add (f64.promote_f32 (f32.load (i32.add (local.get $lut) (i32.shl (local.get $j) (i32.const 2)))))
                            (f64.promote_f32 (f32.load offset=4 (i32.add (local.get $lut) (i32.shl (local.get $j) (i32.const 2)))))) (f64.const 2)))
        ;; not sorted (or NaN): the binary search
        (if (i32.and (i32.ne (local.get $j) (i32.const 0))
              (i32.eqz (f64.le (f64.load (i32.add (local.get $mids) (i32.shl (i32.sub (local.get $j) (i32.const 1)) (i32.const 3)))) (f64.load (i32.add (local.get $mids) (i32.shl (local.get $j) (i32.const 3)))))))
          (then (local.set $mids (i32.const 0)) (br $md)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $ml)))
      (if (local.get $mids) (then (f64.store offset=120 (local.get $mids) (f64.const inf))))))
    ;; head lists: entries of rows from this call's first on dropped (rows written again after a step that did not finish)
    (if (i32.and (i32.ne (local.get $hx) (i32.const 0)) (i32.ne ${p('htrim')} (i32.const 0))) (then
      (local.set $g (i32.const 0))
      (block $htd (loop $htl
        (br_if $htd (i32.ge_u (local.get $g) (local.get $segs)))
        (local.set $dst (i32.add (local.get $hx) (i32.shl (local.get $g) (i32.const 2))))
        (local.set $q (i32.load (local.get $dst)))
        (block $hpd (loop $hpl
          (br_if $hpd (i32.eqz (local.get $q)))
          (br_if $hpd (i32.lt_u (i32.shr_u (i32.load (i32.add (i32.add (local.get $hx) (local.get $hat)) (i32.shl (i32.add (i32.mul (local.get $g) (local.get $hcap)) (i32.sub (local.get $q) (i32.const 1))) (i32.const 3)))) (i32.const 8))
            (i32.add ${p('row0')} (local.get $i))))
          (local.set $q (i32.sub (local.get $q) (i32.const 1)))
          (br $hpl)))
        (i32.store (local.get $dst) (local.get $q))
        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        (br $htl)))))
    (block $rows_d (loop $rows_l
      (br_if $rows_d (i32.ge_u (local.get $i) (local.get $n)))
      ;; room for a whole row of exact entries, else back to the caller to grow the buffer
      (br_if $rows_d (i32.and (i32.ne ${p('sparse')} (i32.const 0)) (i32.lt_s (i32.sub ${p('outCap')} (local.get $e)) (local.get $R))))
      ;; and, with head entries, room in every head for a whole slice of them
      (if (local.get $hx) (then
        (local.set $g (i32.const 0))
        (block $hrd (loop $hrl
          (br_if $hrd (i32.ge_u (local.get $g) (local.get $segs)))
          (br_if $rows_d (i32.gt_s (i32.add (i32.load (i32.add (local.get $hx) (i32.shl (local.get $g) (i32.const 2)))) (local.get $Sg)) (local.get $hcap)))
          (local.set $g (i32.add (local.get $g) (i32.const 1)))
          (br $hrl)))))
      (local.set $t (i32.div_u (local.get $i) (local.get $B))) (local.set $b (i32.rem_u (local.get $i) (local.get $B)))
      (local.set $row (i32.add ${p('row0')} (local.get $i)))
      ;; gather the row: head h's d values from x[b, h, t, :]
      (local.set $h (i32.const 0)) (local.set $dst (local.get $buf))
      (block $gd (loop $gl
        (br_if $gd (i32.ge_u (local.get $h) (local.get $HKV)))
        (memory.copy (local.get $dst)
          (i32.add ${p('x')} (i32.shl (i32.add (i32.add (i32.mul (local.get $b) ${p('xsb')}) (i32.mul (local.get $h) ${p('xsh')})) (i32.mul (local.get $t) ${p('xst')})) (i32.const 2)))
          (i32.shl (local.get $D) (i32.const 2)))
        (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $D) (i32.const 2))))
        (local.set $h (i32.add (local.get $h) (i32.const 1)))
        (br $gl)))
      (local.set $eRow (local.get $e))
      (if (i32.le_u (local.get $kind) (i32.const 1))
        (then
          ;; ggml's blocks of 32: q8_0 d = amax / 127, q = roundf(x / d); q4_0 d = max / −8, q = min(15, trunc(x / d + 8.5))
          (local.set $g (i32.const 0))
          (block $bd (loop $bl
            (br_if $bd (i32.ge_u (local.get $g) (local.get $nG)))
            (local.set $c0 (i32.shl (local.get $g) (i32.const 5)))
            (local.set $amax (f64.const 0)) (local.set $vmax (f64.const 0)) (local.set $j (i32.const 0))
            (block $ad (loop $al
              (br_if $ad (i32.ge_u (local.get $j) (i32.const 32)))
              (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $buf) (i32.shl (i32.add (local.get $c0) (local.get $j)) (i32.const 2))))))
              (if (local.get $kind)
                (then (if (f64.gt (f64.abs (local.get $v)) (local.get $amax)) (then (local.set $amax (f64.abs (local.get $v))) (local.set $vmax (local.get $v)))))
                (else (local.set $amax (f64.max (local.get $amax) (f64.abs (local.get $v))))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br $al)))
            (local.set $d (select (f64.div (local.get $vmax) (f64.const -8)) (f64.div (local.get $amax) (f64.const 127)) (local.get $kind)))
            (local.set $id (select (f64.div (f64.const 1) (local.get $d)) (f64.const 0) (f64.ne (local.get $d) (f64.const 0))))
            (local.set $ga (i32.add (i32.add (local.get $main) ${p('oGrp')}) (i32.shl (i32.add (i32.mul (local.get $row) (local.get $nG)) (local.get $g)) (i32.const 1))))
            (i32.store16 (local.get $ga) (call $f16bits (local.get $d)))
            (local.set $j (i32.const 0))
            (block $qd (loop $ql
              (br_if $qd (i32.ge_u (local.get $j) (i32.const 32)))
              (local.set $v (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $buf) (i32.shl (i32.add (local.get $c0) (local.get $j)) (i32.const 2))))) (local.get $id)))
              (if (local.get $kind)
                (then
                  (local.set $q (i32.trunc_sat_f64_s (f64.add (local.get $v) (f64.const 8.5))))
                  (local.set $q (select (i32.const 15) (local.get $q) (i32.gt_s (local.get $q) (i32.const 15)))))
                (else (local.set $q (i32.trunc_sat_f64_s (call $roundf (local.get $v))))))
              (i32.store8 (i32.add (local.get $qb) (i32.add (local.get $c0) (local.get $j))) (local.get $q))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br $ql)))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (br $bl))))
        (else (if (i32.eqz ${p('params')})
          (then
            ;; per channel: values outside the calibrated [lo, hi] kept exact, codes from the channel's scale and offset
            (if (local.get $bnd) (then
              (local.set $c (i32.const 0))
              (block $od (loop $ol
                (br_if $od (i32.ge_u (local.get $c) (local.get $R)))
                (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $buf) (i32.shl (local.get $c) (i32.const 2))))))
                (if (i32.or (f64.lt (local.get $v) (f64.promote_f32 (f32.load (i32.add (local.get $bnd) (i32.shl (local.get $c) (i32.const 2))))))
                            (f64.gt (local.get $v) (f64.promote_f32 (f32.load (i32.add (local.get $bnd) (i32.shl (i32.add (local.get $R) (local.get $c)) (i32.const 2)))))))
                  (then
                    (i32.store16 (i32.add (local.get $out) (i32.shl (local.get $e) (i32.const 1))) (local.get $c))
                    (f32.store (i32.add (local.get $oval) (i32.shl (local.get $e) (i32.const 2))) (f32.demote_f64 (local.get $v)))
                    (local.set $e (i32.add (local.get $e) (i32.const 1)))))
                (local.set $c (i32.add (local.get $c) (i32.const 1)))
                (br $ol)))))
            (local.set $ga (i32.add (local.get $main) ${p('oChan')}))
            (local.set $c (i32.const 0))
            (block $cd (loop $cl
              (br_if $cd (i32.ge_u (local.get $c) (local.get $R)))
              (local.set $tt (f64.div
                (f64.sub (f64.promote_f32 (f32.load (i32.add (local.get $buf) (i32.shl (local.get $c) (i32.const 2)))))
                         (f64.promote_f32 (f32.load (i32.add (local.get $ga) (i32.shl (i32.add (local.get $R) (local.get $c)) (i32.const 2))))))
                (f64.promote_f32 (f32.load (i32.add (local.get $ga) (i32.shl (local.get $c) (i32.const 2)))))))
              (local.set $q (i32.const 0))
              ;; finite t only (a channel of zero range gives ±∞ or NaN: code 0)
              (if (f64.eq (f64.sub (local.get $tt) (local.get $tt)) (f64.const 0)) (then
                (if (i32.eq (local.get $kind) (i32.const 2))
                  (then (local.set $q (i32.trunc_sat_f64_s (f64.min (f64.convert_i32_s (local.get $top)) (f64.max (f64.const 0) (call $round (local.get $tt)))))))
                  (else (local.set $q (if (result i32) (local.get $mids) (then (call $nearest16 (local.get $mids) (local.get $tt))) (else (call $nearest (local.get $lut) (local.get $nLut) (local.get $tt)))))))))
              (i32.store8 (i32.add (local.get $qb) (local.get $c)) (local.get $q))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br $cl))))
          (else
            ;; per group: the median (with τ), |x − median| > τ kept exact, min-max of the others -> f16 scale and offset
            (local.set $g (i32.const 0))
            (block $pd (loop $pl
              (br_if $pd (i32.ge_u (local.get $g) (local.get $nG)))
              (local.set $c0 (i32.mul (local.get $g) (local.get $G)))
              (local.set $med (f64.const 0))
              (if (local.get $hasTau) (then
                (local.set $m (i32.shr_u (local.get $G) (i32.const 1)))
                (local.set $med (f64.promote_f32 (call $select (i32.add (local.get $buf) (i32.shl (local.get $c0) (i32.const 2))) (local.get $mbuf) (i32.add (local.get $mbuf) (i32.shl (local.get $G) (i32.const 2))) (local.get $G) (local.get $m))))
                (if (i32.eqz (i32.and (local.get $G) (i32.const 1))) (then
                  ;; the (m − 1)-th smallest: the median itself when at most m − 1 values lie below it, else the largest of those
                  (local.set $mx (f64.const -inf)) (local.set $q (i32.const 0)) (local.set $j (i32.const 0))
                  (block $xd (loop $xl
                    (br_if $xd (i32.ge_u (local.get $j) (local.get $G)))
                    (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $buf) (i32.shl (i32.add (local.get $c0) (local.get $j)) (i32.const 2))))))
                    (local.set $q (i32.add (local.get $q) (f64.lt (local.get $v) (local.get $med))))
                    (local.set $mx (select (f64.max (local.get $mx) (local.get $v)) (local.get $mx) (f64.lt (local.get $v) (local.get $med))))
                    (local.set $j (i32.add (local.get $j) (i32.const 1)))
                    (br $xl)))
                  (if (i32.lt_u (local.get $q) (local.get $m)) (then (local.set $mx (local.get $med))))
                  (local.set $med (f64.div (f64.add (local.get $mx) (local.get $med)) (f64.const 2)))))))
              (local.set $mn (f64.const inf)) (local.set $mx (f64.const -inf)) (local.set $j (i32.const 0))
              (block $kd (loop $kl
                (br_if $kd (i32.ge_u (local.get $j) (local.get $G)))
                (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $buf) (i32.shl (i32.add (local.get $c0) (local.get $j)) (i32.const 2))))))
                (if (i32.and (local.get $hasTau) (f64.gt (f64.abs (f64.sub (local.get $v) (local.get $med))) (local.get $tau)))
                  (then
                    (i32.store16 (i32.add (local.get $out) (i32.shl (local.get $e) (i32.const 1))) (i32.add (local.get $c0) (local.get $j)))
                    (f32.store (i32.add (local.get $oval) (i32.shl (local.get $e) (i32.const 2))) (f32.demote_f64 (local.get $v)))
                    (local.set $e (i32.add (local.get $e) (i32.const 1))))
                  (else
                    (local.set $mn (f64.min (local.get $mn) (local.get $v)))
                    (local.set $mx (f64.max (local.get $mx) (local.get $v)))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $kl)))
              (if (f64.gt (local.get $mn) (local.get $mx)) (then (local.set $mn (local.get $med)) (local.set $mx (local.get $med))))
              ;; uniform: scale = range / (2^bits − 1), offset = min; nuq: scale = range / 2, offset = the midpoint
              (if (i32.eq (local.get $kind) (i32.const 2))
                (then
                  (local.set $sh (call $f16bits (f64.div (f64.sub (local.get $mx) (local.get $mn)) (f64.convert_i32_s (local.get $top)))))
                  (local.set $bit (call $f16bits (local.get $mn))))
                (else
                  (local.set $sh (call $f16bits (f64.div (f64.sub (local.get $mx) (local.get $mn)) (f64.const 2))))
                  (local.set $bit (call $f16bits (f64.div (f64.add (local.get $mx) (local.get $mn)) (f64.const 2))))))
              (local.set $sc (f64.promote_f32 (f32.load (i32.add (local.get $tab) (i32.shl (local.get $sh) (i32.const 2))))))
              (local.set $of (f64.promote_f32 (f32.load (i32.add (local.get $tab) (i32.shl (local.get $bit) (i32.const 2))))))
              (local.set $ga (i32.add (i32.add (local.get $main) ${p('oGrp')}) (i32.shl (i32.add (i32.mul (local.get $row) (local.get $nG)) (local.get $g)) (i32.const 2))))
              (i32.store16 (local.get $ga) (local.get $sh))
              (i32.store16 offset=2 (local.get $ga) (local.get $bit))
              (local.set $j (i32.const 0))
              (block $ud (loop $ul
                (br_if $ud (i32.ge_u (local.get $j) (local.get $G)))
                (local.set $tt (select
                  (f64.div (f64.sub (f64.promote_f32 (f32.load (i32.add (local.get $buf) (i32.shl (i32.add (local.get $c0) (local.get $j)) (i32.const 2))))) (local.get $of)) (local.get $sc))
                  (f64.const 0) (f64.ne (local.get $sc) (f64.const 0))))
                (if (i32.eq (local.get $kind) (i32.const 2))
                  (then (local.set $q (i32.trunc_sat_f64_s (f64.min (f64.convert_i32_s (local.get $top)) (f64.max (f64.const 0) (call $round (local.get $tt)))))))
                  (else (local.set $q (if (result i32) (local.get $mids) (then (call $nearest16 (local.get $mids) (local.get $tt))) (else (call $nearest (local.get $lut) (local.get $nLut) (local.get $tt)))))))
                (i32.store8 (i32.add (local.get $qb) (i32.add (local.get $c0) (local.get $j))) (local.get $q))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $ul)))
              (local.set $g (i32.add (local.get $g) (i32.const 1)))
              (br $pl)))))))
      ;; a sink row: every value exact (in place of the outliers)
      (if ${p('sink')} (then
        (if (i32.load8_u (i32.add ${p('sink')} (local.get $i))) (then
          (local.set $e (local.get $eRow)) (local.set $c (i32.const 0))
          (block $sd (loop $sl
            (br_if $sd (i32.ge_u (local.get $c) (local.get $R)))
            (i32.store16 (i32.add (local.get $out) (i32.shl (local.get $e) (i32.const 1))) (local.get $c))
            (f32.store (i32.add (local.get $oval) (i32.shl (local.get $e) (i32.const 2))) (f32.load (i32.add (local.get $buf) (i32.shl (local.get $c) (i32.const 2)))))
            (local.set $e (i32.add (local.get $e) (i32.const 1)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $sl)))))))
      ;; pack the codes: slice h of the row at (h · cap + row) · sliceBytes, code c' of it at bit c' · bits
      (local.set $h (i32.const 0)) (local.set $c (i32.const 0))
      (block $hd (loop $hl
        (br_if $hd (i32.ge_u (local.get $h) (local.get $slices)))
        (local.set $base (i32.add (local.get $main) (i32.mul (i32.add (i32.mul (local.get $h) ${p('cap')}) (local.get $row)) (local.get $sb))))
        (memory.fill (local.get $base) (i32.const 0) (local.get $sb))
        (local.set $j (i32.const 0))
        (if (i32.eq (local.get $bits) (i32.const 8))
          (then (memory.copy (local.get $base) (i32.add (local.get $qb) (local.get $c)) (local.get $S)))
          (else (if (i32.and (i32.eq (local.get $bits) (i32.const 4)) (i32.eqz (i32.and (local.get $S) (i32.const 1))))
            (then
              (block $fd (loop $fl
                (br_if $fd (i32.ge_u (local.get $j) (local.get $S)))
                (i32.store8 (i32.add (local.get $base) (i32.shr_u (local.get $j) (i32.const 1)))
                  (i32.or (i32.and (i32.load8_u (i32.add (local.get $qb) (i32.add (local.get $c) (local.get $j)))) (i32.const 15))
                          (i32.shl (i32.and (i32.load8_u offset=1 (i32.add (local.get $qb) (i32.add (local.get $c) (local.get $j)))) (i32.const 15)) (i32.const 4))))
                (local.set $j (i32.add (local.get $j) (i32.const 2)))
                (br $fl))))
            (else
              (block $wd (loop $wl
                (br_if $wd (i32.ge_u (local.get $j) (local.get $S)))
                (local.set $bit (i32.mul (local.get $j) (local.get $bits)))
                (local.set $dst (i32.add (local.get $base) (i32.shr_u (local.get $bit) (i32.const 3))))
                (local.set $sh (i32.and (local.get $bit) (i32.const 7)))
                (local.set $q (i32.shl (i32.and (i32.load8_u (i32.add (local.get $qb) (i32.add (local.get $c) (local.get $j)))) (local.get $top)) (local.get $sh)))
                (i32.store8 (local.get $dst) (i32.or (i32.load8_u (local.get $dst)) (local.get $q)))
                (if (i32.gt_u (i32.add (local.get $sh) (local.get $bits)) (i32.const 8)) (then
                  (i32.store8 offset=1 (local.get $dst) (i32.or (i32.load8_u offset=1 (local.get $dst)) (i32.shr_u (local.get $q) (i32.const 8))))))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $wl)))))))
        (local.set $c (i32.add (local.get $c) (local.get $S)))
        (local.set $h (i32.add (local.get $h) (i32.const 1)))
        (br $hl)))
      ;; row pointer, and per segment the first entry at or past its first channel (counted from the row's first)
      (if ${p('sparse')} (then
        (i32.store (i32.add (i32.add (local.get $main) ${p('oRowptr')}) (i32.shl (i32.add (local.get $row) (i32.const 1)) (i32.const 2))) (local.get $e))
        (if (i32.gt_u (local.get $segs) (i32.const 1)) (then
          (local.set $g (i32.const 0)) (local.set $j (i32.const 0))
          (local.set $dst (i32.add (i32.add (local.get $main) ${p('oSeg')}) (i32.shl (i32.mul (local.get $row) (local.get $segs)) (i32.const 1))))
          (block $zd (loop $zl
            (br_if $zd (i32.ge_u (local.get $g) (local.get $segs)))
            (block $yd (loop $yl
              (br_if $yd (i32.ge_u (i32.add (local.get $eRow) (local.get $j)) (local.get $e)))
              (br_if $yd (i32.ge_u (i32.load16_u (i32.add (local.get $out) (i32.shl (i32.add (local.get $eRow) (local.get $j)) (i32.const 1)))) (i32.mul (local.get $g) (local.get $Sg))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br $yl)))
            (i32.store16 (i32.add (local.get $dst) (i32.shl (local.get $g) (i32.const 1))) (local.get $j))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (br $zl)))))))
      ;; the row's entries appended to their heads' lists: (row · 256 + channel within the head, value);
      ;; with group scales the value less the dense value its code decodes to (lut[code] · scale +
      ;; offset in f32, as the reference decodes it): what the attention kernel adds
      (if (local.get $hx) (then
        (local.set $j (local.get $eRow))
        (block $had (loop $hal
          (br_if $had (i32.ge_u (local.get $j) (local.get $e)))
          (local.set $c (i32.load16_u (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 1)))))
          (local.set $g (i32.div_u (local.get $c) (local.get $Sg)))
          (local.set $dst (i32.add (local.get $hx) (i32.shl (local.get $g) (i32.const 2))))
          (local.set $q (i32.load (local.get $dst)))
          (local.set $base (i32.add (i32.add (local.get $hx) (local.get $hat)) (i32.shl (i32.add (i32.mul (local.get $g) (local.get $hcap)) (local.get $q)) (i32.const 3))))
          (i32.store (local.get $base) (i32.or (i32.shl (local.get $row) (i32.const 8)) (i32.sub (local.get $c) (i32.mul (local.get $g) (local.get $Sg)))))
          (f32.store offset=4 (local.get $base) (f32.load (i32.add (local.get $oval) (i32.shl (local.get $j) (i32.const 2)))))
          (if ${p('params')} (then
            (local.set $ga (i32.add (i32.add (local.get $main) ${p('oGrp')}) (i32.shl (i32.add (i32.mul (local.get $row) (local.get $nG)) (i32.div_u (local.get $c) (local.get $G))) (i32.const 2))))
            (f32.store offset=4 (local.get $base) (f32.sub (f32.load offset=4 (local.get $base))
              (f32.add (f32.mul (f32.load (i32.add (local.get $lut) (i32.shl (i32.load8_u (i32.add (local.get $qb) (local.get $c))) (i32.const 2))))
                  (f32.load (i32.add (local.get $tab) (i32.shl (i32.load16_u (local.get $ga)) (i32.const 2)))))
                (f32.load (i32.add (local.get $tab) (i32.shl (i32.load16_u offset=2 (local.get $ga)) (i32.const 2)))))))))
          (i32.store (local.get $dst) (i32.add (local.get $q) (i32.const 1)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $hal)))))
      (if ${p('oPos')} (then
        (i32.store (i32.add (i32.add (local.get $main) ${p('oPos')}) (i32.shl (local.get $row) (i32.const 2)))
          (i32.load (i32.add ${p('pos')} (i32.shl (local.get $i) (i32.const 2)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows_l)))
    (i32.store offset=${KVE.rowsDone} (local.get $prm) (local.get $i))
    (i32.store offset=${KVE.nOutDone} (local.get $prm) (local.get $e)))`;

/** @param {{relaxed: boolean}} _variant  (identical builds) */
export function generate(_variant) {
  const out = ['(module', '  (import "env" "memory" (memory 1 65536 shared))', F16BITS, ROUND, NEAREST, NEAREST16, SELECT, KERNEL];
  for (const e of exportNames) out.push(`  (export "${e}" (func $${e}))`);
  out.push(')');
  return out.join('\n');
}
