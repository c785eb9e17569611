// The scalar rules of codec.ts that the packed KV-cache encoder (kvenc.wat.mjs) follows, as WAT
// functions pasted into its module: f32ToF16Bits, Math.round and C's roundf, the nearest codebook
// entry (binary search, and the branch-free count for a sorted 16-entry codebook), and a selection
// of the k-th smallest. Not for: the encoder's row loop.

// f32ToF16Bits (src/tensor/dtype.ts) of a number: rounded to f32 first, then to half with ties to even
export const F16BITS = `
  (func $f16bits (param $x f64) (result i32)
    (local $b i32) (local $sign i32) (local $exp i32) (local $mant i32) (local $e i32) (local $m i32) (local $rest i32) (local $shift i32) (local $half i32)
    (local.set $b (i32.reinterpret_f32 (f32.demote_f64 (local.get $x))))
    (local.set $sign (i32.and (i32.shr_u (local.get $b) (i32.const 16)) (i32.const 0x8000)))
    (local.set $exp (i32.and (i32.shr_u (local.get $b) (i32.const 23)) (i32.const 0xff)))
    (local.set $mant (i32.and (local.get $b) (i32.const 0x7fffff)))
    (if (i32.eq (local.get $exp) (i32.const 0xff)) (then
      (return (i32.or (i32.or (local.get $sign) (i32.const 0x7c00))
        (select (i32.or (i32.const 0x200) (i32.shr_u (local.get $mant) (i32.const 13))) (i32.const 0) (local.get $mant))))))
    (local.set $e (i32.sub (local.get $exp) (i32.const 112)))
    (if (i32.ge_s (local.get $e) (i32.const 0x1f)) (then (return (i32.or (local.get $sign) (i32.const 0x7c00)))))
    (if (i32.le_s (local.get $e) (i32.const 0)) (then
      (if (i32.lt_s (local.get $e) (i32.const -10)) (then (return (local.get $sign))))
      (local.set $mant (i32.or (local.get $mant) (i32.const 0x800000)))
      (local.set $shift (i32.sub (i32.const 14) (local.get $e)))
      (local.set $half (i32.shl (i32.const 1) (i32.sub (local.get $shift) (i32.const 1))))
      (local.set $m (i32.shr_u (local.get $mant) (local.get $shift)))
      (local.set $rest (i32.and (local.get $mant) (i32.sub (i32.shl (i32.const 1) (local.get $shift)) (i32.const 1))))
      (if (i32.or (i32.gt_u (local.get $rest) (local.get $half))
                  (i32.and (i32.eq (local.get $rest) (local.get $half)) (i32.and (local.get $m) (i32.const 1))))
        (then (local.set $m (i32.add (local.get $m) (i32.const 1)))))
      (return (i32.or (local.get $sign) (local.get $m)))))
    (local.set $m (i32.shr_u (local.get $mant) (i32.const 13)))
    (local.set $rest (i32.and (local.get $mant) (i32.const 0x1fff)))
    (if (i32.or (i32.gt_u (local.get $rest) (i32.const 0x1000))
                (i32.and (i32.eq (local.get $rest) (i32.const 0x1000)) (i32.and (local.get $m) (i32.const 1))))
      (then
        (local.set $m (i32.add (local.get $m) (i32.const 1)))
        (if (i32.eq (local.get $m) (i32.const 0x400)) (then
          (local.set $m (i32.const 0))
          (local.set $e (i32.add (local.get $e) (i32.const 1)))
          (if (i32.ge_s (local.get $e) (i32.const 0x1f)) (then (return (i32.or (local.get $sign) (i32.const 0x7c00)))))))))
    (i32.or (i32.or (local.get $sign) (i32.shl (local.get $e) (i32.const 10))) (local.get $m)))`;

// Math.round (halves toward +∞) and C's roundf (halves away from zero, as gguf-quants.ts's roundf)
export const ROUND = `
  (func $round (param $x f64) (result f64) (local $r f64)
    (local.set $r (f64.floor (local.get $x)))
    (select (f64.add (local.get $r) (f64.const 1)) (local.get $r) (f64.ge (f64.sub (local.get $x) (local.get $r)) (f64.const 0.5))))
  (func $roundf (param $x f64) (result f64)
    (f64.mul
      (select (f64.const 1) (select (f64.const -1) (f64.const 0) (f64.lt (local.get $x) (f64.const 0))) (f64.gt (local.get $x) (f64.const 0)))
      (f64.floor (f64.add (f64.abs (local.get $x)) (f64.const 0.5)))))`;

// index of the entry of the sorted f32 table [n] nearest to x, ties to the lower (codec.ts nearest)
export const NEAREST = `
  (func $nearest (param $lut i32) (param $n i32) (param $x f64) (result i32) (local $lo i32) (local $hi i32) (local $mid i32) (local $a i32)
    (local.set $hi (i32.sub (local.get $n) (i32.const 1)))
    (block $d (loop $l
      (br_if $d (i32.ge_s (local.get $lo) (local.get $hi)))
      (local.set $mid (i32.shr_u (i32.add (local.get $lo) (local.get $hi)) (i32.const 1)))
      (local.set $a (i32.add (local.get $lut) (i32.shl (local.get $mid) (i32.const 2))))
      (if (f64.gt (local.get $x) (f64.div (f64.add (f64.promote_f32 (f32.load (local.get $a))) (f64.promote_f32 (f32.load offset=4 (local.get $a)))) (f64.const 2)))
        (then (local.set $lo (i32.add (local.get $mid) (i32.const 1))))
        (else (local.set $hi (local.get $mid))))
      (br $l)))
    (local.get $lo))`;

// $nearest for a sorted 16-entry table without branches: the count of the 15 midpoints (f64, as
// $nearest computes them, at m; m[15] = +∞) below x, which is where the binary search stops
// (midpoints of a sorted table do not decrease; NaN is below none: 0, as there)
export const NEAREST16 = `
  (func $nearest16 (param $m i32) (param $x f64) (result i32) (local $xv v128) (local $acc v128)
    (local.set $xv (f64x2.splat (local.get $x)))
    ${Array.from({ length: 8 }, (_, k) => `(local.set $acc (i64x2.sub (local.get $acc) (f64x2.gt (local.get $xv) (v128.load offset=${16 * k} (local.get $m)))))`).join('\n    ')}
    (i32.wrap_i64 (i64.add (i64x2.extract_lane 0 (local.get $acc)) (i64x2.extract_lane 1 (local.get $acc)))))`;

// the k-th smallest of f32 a[0, n) (the value codec.ts select finds, for finite values) by
// three-way partitions without branches on the data: every value is stored at the low end of a
// scratch [n] and at its high end, and only the matching end's count moves (values below the pivot
// gather at the low end, above it at the high end); then the side holding k is partitioned again,
// into the other scratch (b and c [n] each, in turn; a is only read), until k falls among the
// values equal to the pivot.
export const SELECT = `
  (func $select (param $a i32) (param $b i32) (param $c i32) (param $n i32) (param $k i32) (result f32)
    (local $p f32) (local $x f32) (local $i i32) (local $l i32) (local $g i32) (local $t i32) (local $src i32)
    (local.set $src (local.get $a))
    (loop $outer
      (local.set $p (f32.load (i32.add (local.get $a) (i32.shl (i32.shr_u (local.get $n) (i32.const 1)) (i32.const 2)))))
      (local.set $l (i32.const 0)) (local.set $g (local.get $n)) (local.set $i (i32.const 0))
      (block $pd (loop $pl
        (br_if $pd (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (f32.load (i32.add (local.get $a) (i32.shl (local.get $i) (i32.const 2)))))
        (f32.store (i32.add (local.get $b) (i32.shl (local.get $l) (i32.const 2))) (local.get $x))
        (f32.store (i32.add (local.get $b) (i32.shl (i32.sub (local.get $g) (i32.const 1)) (i32.const 2))) (local.get $x))
        (local.set $l (i32.add (local.get $l) (f32.lt (local.get $x) (local.get $p))))
        (local.set $g (i32.sub (local.get $g) (f32.gt (local.get $x) (local.get $p))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $pl)))
      ;; k below the pivot: the low end next; above it: the high end (k counted from there)
      ;; (the next pass writes where this one read, or into c after the first)
      (local.set $t (select (local.get $c) (local.get $a) (i32.eq (local.get $a) (local.get $src))))
      (if (i32.lt_u (local.get $k) (local.get $l)) (then
        (local.set $a (local.get $b)) (local.set $b (local.get $t))
        (local.set $n (local.get $l))
        (br $outer)))
      (if (i32.ge_u (local.get $k) (local.get $g)) (then
        (local.set $a (i32.add (local.get $b) (i32.shl (local.get $g) (i32.const 2)))) (local.set $b (local.get $t))
        (local.set $k (i32.sub (local.get $k) (local.get $g))) (local.set $n (i32.sub (local.get $n) (local.get $g)))
        (br $outer))))
    (local.get $p))`;
