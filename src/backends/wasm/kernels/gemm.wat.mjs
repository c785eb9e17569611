// Generator of the f32 GEMM kernel module (WebAssembly text). One exported entry point,
// `gemm_f32(params, task, nTasks)`, runs this thread's share of a batched C = A·B whose operands
// have arbitrary element strides; the parameter block layout is below and mirrored in
// src/backends/wasm/matmul.ts. Emitted twice by scripts/build-wasm.mjs: plain SIMD128
// (f32x4.mul + f32x4.add) and relaxed SIMD (f32x4.relaxed_madd).
//
// Design (BLIS-like): per thread, for each NC-wide block of its columns and each KC-deep slice of
// K, B is packed into NR-wide panels (zero padded), A into MR-row strips, and an MR×NR register
// blocked micro-kernel (accumulators in locals, A by load32_splat, B by v128.load) updates C.
// Rows of A that are few (GEMV-like, M <= GEMV_M) skip packing: each thread reads its part of B
// once, as GEMV_STREAMS sequential streams over separate chunks of rows (what the prefetchers
// follow best; interleaved neighbouring rows stream from DRAM at half the speed). With row-major B
// the row kernel adds rows of B into the output rows (a single product is split over K between
// threads, each into its own partial, and the last thread to finish sums the partials); with
// transposed B (rows of B^T contiguous, the x·Wᵀ of linear layers) a dot-product kernel.
// Transposed B is packed with 4x4 SIMD transposes; any other strides with a scalar loop.
// Not for: other dtypes (the runtime falls back to the reference kernels).

/**
 * Tile sizes per variant, tuned on Zen 5 / V8 11.3 (x64 gives wasm 15 usable xmm registers:
 * accumulators + B vectors + the A splat, + 1 temporary for mul/add, must fit or the loop spills).
 * MR×NR: micro-kernel rows × columns (NR / 4 vectors). KC: depth of a packed slice. NC: width of a
 * packed block of B (a multiple of NR). GEMV_M: at most this many rows of A take the
 * unpacked GEMV kernels. UNROLL: k-steps per micro-kernel iteration (2 makes TurboFan spill).
 * GEMV_UNROLL: vectors of a row of B per iteration of the row kernel (immediate offsets keep
 * address arithmetic off the front end). GEMV_STREAMS: chunks of rows of B (or Bᵀ) the GEMV
 * kernels read at once.
 */
export const CONFIGS = {
  relaxed: { MR: 3, NR: 12, KC: 256, NC: 504, GEMV_M: 4, UNROLL: 1, GEMV_UNROLL: 8, GEMV_STREAMS: 4 },
  plain: { MR: 2, NR: 16, KC: 256, NC: 512, GEMV_M: 4, UNROLL: 1, GEMV_UNROLL: 8, GEMV_STREAMS: 4 },
};

/** Parameter block, i32 fields at these byte offsets (`sync`: a counter the caller zeroes). */
export const P = {
  M: 0, N: 4, K: 8, nBatch: 12, table: 16, sam: 20, sak: 24, sbk: 28, sbn: 32, ldc: 36,
  scratch: 40, scratchBytes: 44, sync: 48,
};

/** Bytes of scratch one task needs: packed B block, packed A strip, one tile. */
export function scratchBytes(c) {
  return c.KC * c.NC * 4 + c.MR * c.KC * 4 + c.MR * c.NR * 4 + 256;
}
export const SCRATCH_BYTES = Math.max(...Object.values(CONFIGS).map(scratchBytes));

export const name = 'gemm';
export const exportNames = ['gemm_f32'];

// i8x16.shuffle lane patterns of a 4x4 f32 transpose
const lanes = (...f) => f.flatMap((x) => [4 * x, 4 * x + 1, 4 * x + 2, 4 * x + 3]).join(' ');
const SH_LO = lanes(0, 4, 1, 5); // a0 b0 a1 b1
const SH_HI = lanes(2, 6, 3, 7); // a2 b2 a3 b3
const SH_A = lanes(0, 1, 4, 5);
const SH_B = lanes(2, 3, 6, 7);

let cfg; // the configuration of the module being generated
const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const i32 = (n) => `(i32.const ${n})`;
const add = (a, b) => `(i32.add ${a} ${b})`;
const mul = (a, b) => `(i32.mul ${a} ${b})`;

/** @param {{relaxed: boolean}} variant @param {object} [config] overrides of CONFIGS (tuning) */
export function generate({ relaxed }, config = {}) {
  cfg = { ...CONFIGS[relaxed ? 'relaxed' : 'plain'], ...config };
  const { MR } = cfg;
  const madd = (a, b, c) =>
    relaxed ? `(f32x4.relaxed_madd ${a} ${b} ${c})` : `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`;
  const out = [];
  out.push(`(module`);
  out.push(`  (import "env" "memory" (memory 1 65536 shared))`);
  for (let mr = 1; mr <= MR; mr++) out.push(micro(mr, madd));
  out.push(packB(), packA(), gemvRow(madd), gemvDot(madd), gemvSplit(), zeroTile(), runOne(), entry());
  out.push(`  (export "gemm_f32" (func $gemm_f32))`);
  out.push(`)`);
  return out.join('\n');
}

// C[mr, nr] (+)= Ap[kc, mr]^T · Bp[kc, NR]. ap/bp packed, c row stride ldc bytes; kc >= 1.
// nr < NR writes through `tile` and copies the valid columns.
function micro(mr, madd) {
  const { NR, UNROLL } = cfg;
  const nv = NR / 4;
  const L = [];
  L.push(`  (func $micro_${mr} (param $ap i32) (param $bp i32) (param $c i32) (param $ldc i32) (param $kc i32) (param $accum i32) (param $nr i32) (param $tile i32)`);
  const locals = [];
  for (let i = 0; i < mr; i++) for (let j = 0; j < nv; j++) locals.push(`$c${i}_${j}`);
  for (let j = 0; j < nv; j++) locals.push(`$b${j}`);
  locals.push('$a');
  L.push(`    ${locals.map((x) => `(local ${x} v128)`).join(' ')} (local $i i32) (local $j i32) (local $p i32) (local $q i32) (local $t f32)`);
  const step = (u) => {
    const s = [];
    for (let j = 0; j < nv; j++) s.push(set(`b${j}`, `(v128.load offset=${(u * NR + 4 * j) * 4} ${g('bp')})`));
    for (let i = 0; i < mr; i++) {
      s.push(set('a', `(v128.load32_splat offset=${(u * mr + i) * 4} ${g('ap')})`));
      for (let j = 0; j < nv; j++) s.push(set(`c${i}_${j}`, madd(g('a'), g(`b${j}`), g(`c${i}_${j}`))));
    }
    return s.map((x) => '        ' + x).join('\n');
  };
  // main loop: UNROLL steps per iteration
  L.push(`    (block $done_u (loop $ku`);
  L.push(`      (br_if $done_u (i32.lt_u ${g('kc')} ${i32(UNROLL)}))`);
  for (let u = 0; u < UNROLL; u++) L.push(step(u));
  L.push(`      ${set('bp', add(g('bp'), i32(UNROLL * NR * 4)))} ${set('ap', add(g('ap'), i32(UNROLL * mr * 4)))}`);
  L.push(`      ${set('kc', `(i32.sub ${g('kc')} ${i32(UNROLL)})`)}`);
  L.push(`      (br $ku)))`);
  // remainder
  L.push(`    (block $done (loop $k1`);
  L.push(`      (br_if $done (i32.eqz ${g('kc')}))`);
  L.push(step(0));
  L.push(`      ${set('bp', add(g('bp'), i32(NR * 4)))} ${set('ap', add(g('ap'), i32(mr * 4)))}`);
  L.push(`      ${set('kc', `(i32.sub ${g('kc')} ${i32(1)})`)}`);
  L.push(`      (br $k1)))`);
  // full tile: store or accumulate straight into C
  L.push(`    (if (i32.eq ${g('nr')} ${i32(NR)}) (then`);
  for (let i = 0; i < mr; i++) {
    const row = i === 0 ? g('c') : add(g('c'), mul(g('ldc'), i32(i)));
    L.push(`      ${set('p', row)}`);
    for (let j = 0; j < nv; j++) {
      const acc = g(`c${i}_${j}`);
      L.push(`      (if ${g('accum')} (then (v128.store offset=${16 * j} ${g('p')} (f32x4.add (v128.load offset=${16 * j} ${g('p')}) ${acc})))` +
        ` (else (v128.store offset=${16 * j} ${g('p')} ${acc})))`);
    }
  }
  L.push(`      (return)))`);
  // partial tile: spill to tile[mr][NR], copy nr columns
  for (let i = 0; i < mr; i++) for (let j = 0; j < nv; j++) {
    L.push(`    (v128.store offset=${(i * NR + 4 * j) * 4} ${g('tile')} ${g(`c${i}_${j}`)})`);
  }
  L.push(`    ${set('i', i32(0))}`);
  L.push(`    (loop $ri`);
  L.push(`      ${set('p', add(g('c'), mul(g('i'), g('ldc'))))} ${set('q', add(g('tile'), mul(g('i'), i32(NR * 4))))} ${set('j', i32(0))}`);
  L.push(`      (loop $rj`);
  L.push(`        ${set('t', `(f32.load ${g('q')})`)}`);
  L.push(`        (if ${g('accum')} (then ${set('t', `(f32.add (f32.load ${g('p')}) ${g('t')})`)}))`);
  L.push(`        (f32.store ${g('p')} ${g('t')})`);
  L.push(`        ${set('p', add(g('p'), i32(4)))} ${set('q', add(g('q'), i32(4)))} ${set('j', add(g('j'), i32(1)))}`);
  L.push(`        (br_if $rj (i32.lt_u ${g('j')} ${g('nr')})))`);
  L.push(`      ${set('i', add(g('i'), i32(1)))}`);
  L.push(`      (br_if $ri (i32.lt_u ${g('i')} ${i32(mr)}))))`);
  return L.join('\n');
}

// Bp[panel][k][NR] = B(k, panel*NR + j) for k < kc, columns < nc, zeros beyond nc.
// b = address of B(0, 0) of the block, strides in elements.
function packB() {
  const { NR } = cfg;
  return `
  (func $packB (param $b i32) (param $sbk i32) (param $sbn i32) (param $kc i32) (param $nc i32) (param $bp i32)
    (local $k i32) (local $j i32) (local $col i32) (local $src i32) (local $dst i32) (local $full i32) (local $panelBytes i32)
    (local $kc4 i32) (local $s0 i32) (local $s1 i32) (local $s2 i32) (local $s3 i32) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    ${set('panelBytes', mul(g('kc'), i32(NR * 4)))}
    ${set('full', `(i32.mul (i32.div_u ${g('nc')} ${i32(NR)}) ${i32(NR)})`)}
    ;; fast path: unit column stride, full panels, one B row at a time
    (if (i32.eq ${g('sbn')} ${i32(1)}) (then
      ${set('k', i32(0))}
      (block $kd (loop $kl
        (br_if $kd (i32.ge_u ${g('k')} ${g('kc')}))
        ${set('src', add(g('b'), mul(mul(g('k'), g('sbk')), i32(4))))}
        ${set('dst', add(g('bp'), mul(g('k'), i32(NR * 4))))}
        ${set('col', i32(0))}
        (block $jd (loop $jl
          (br_if $jd (i32.ge_u ${g('col')} ${g('full')}))
${Array.from({ length: NR / 4 }, (_, j) => `          (v128.store offset=${16 * j} ${g('dst')} (v128.load offset=${16 * j} ${g('src')}))`).join('\n')}
          ${set('src', add(g('src'), i32(NR * 4)))} ${set('dst', add(g('dst'), g('panelBytes')))}
          ${set('col', add(g('col'), i32(NR)))}
          (br $jl)))
        ${set('k', add(g('k'), i32(1)))}
        (br $kl)))
    ) (else (if (i32.eq ${g('sbk')} ${i32(1)}) (then
      ;; transposed B (rows of B^T contiguous over k): 4 columns x 4 k at a time, 4x4 transposes
      ${set('kc4', `(i32.and ${g('kc')} ${i32(-4)})`)}
      ${set('col', i32(0))}
      (block $td (loop $tl
        (br_if $td (i32.ge_u ${g('col')} ${g('full')}))
        ${set('dst', add(g('bp'), mul(`(i32.div_u ${g('col')} ${i32(NR)})`, g('panelBytes'))))}
        ${set('j', i32(0))}
        (loop $tj
          ${set('s0', add(g('b'), mul(mul(add(g('col'), g('j')), g('sbn')), i32(4))))}
          ${set('s1', add(g('s0'), mul(g('sbn'), i32(4))))}
          ${set('s2', add(g('s1'), mul(g('sbn'), i32(4))))}
          ${set('s3', add(g('s2'), mul(g('sbn'), i32(4))))}
          ${set('src', i32(0))}
          ${set('k', add(g('dst'), mul(g('j'), i32(4))))}
          (block $tkd (loop $tkl
            (br_if $tkd (i32.ge_u ${g('src')} (i32.mul ${g('kc4')} ${i32(4)})))
            ${set('t0', `(i8x16.shuffle ${SH_LO} (v128.load (i32.add ${g('s0')} ${g('src')})) (v128.load (i32.add ${g('s1')} ${g('src')})))`)}
            ${set('t1', `(i8x16.shuffle ${SH_HI} (v128.load (i32.add ${g('s0')} ${g('src')})) (v128.load (i32.add ${g('s1')} ${g('src')})))`)}
            ${set('t2', `(i8x16.shuffle ${SH_LO} (v128.load (i32.add ${g('s2')} ${g('src')})) (v128.load (i32.add ${g('s3')} ${g('src')})))`)}
            ${set('t3', `(i8x16.shuffle ${SH_HI} (v128.load (i32.add ${g('s2')} ${g('src')})) (v128.load (i32.add ${g('s3')} ${g('src')})))`)}
            (v128.store offset=0 ${g('k')} (i8x16.shuffle ${SH_A} ${g('t0')} ${g('t2')}))
            (v128.store offset=${NR * 4} ${g('k')} (i8x16.shuffle ${SH_B} ${g('t0')} ${g('t2')}))
            (v128.store offset=${NR * 8} ${g('k')} (i8x16.shuffle ${SH_A} ${g('t1')} ${g('t3')}))
            (v128.store offset=${NR * 12} ${g('k')} (i8x16.shuffle ${SH_B} ${g('t1')} ${g('t3')}))
            ${set('src', add(g('src'), i32(16)))} ${set('k', add(g('k'), i32(NR * 16)))}
            (br $tkl)))
          ;; k tail of these 4 columns
          (block $ttd (loop $ttl
            (br_if $ttd (i32.ge_u ${g('src')} (i32.mul ${g('kc')} ${i32(4)})))
            (f32.store offset=0 ${g('k')} (f32.load (i32.add ${g('s0')} ${g('src')})))
            (f32.store offset=4 ${g('k')} (f32.load (i32.add ${g('s1')} ${g('src')})))
            (f32.store offset=8 ${g('k')} (f32.load (i32.add ${g('s2')} ${g('src')})))
            (f32.store offset=12 ${g('k')} (f32.load (i32.add ${g('s3')} ${g('src')})))
            ${set('src', add(g('src'), i32(4)))} ${set('k', add(g('k'), i32(NR * 4)))}
            (br $ttl)))
          ${set('j', add(g('j'), i32(4)))}
          (br_if $tj (i32.lt_u ${g('j')} ${i32(NR)})))
        ${set('col', add(g('col'), i32(NR)))}
        (br $tl)))
    ) (else ${set('full', i32(0))}))))
    ;; general path: every column from \`full\` on, any strides, zero padding
    ${set('col', g('full'))}
    (block $cd (loop $cl
      (br_if $cd (i32.ge_u ${g('col')} (i32.mul (i32.div_u (i32.add ${g('nc')} ${i32(NR - 1)}) ${i32(NR)}) ${i32(NR)})))
      ${set('dst', add(add(g('bp'), mul(`(i32.div_u ${g('col')} ${i32(NR)})`, g('panelBytes'))), mul(`(i32.rem_u ${g('col')} ${i32(NR)})`, i32(4))))}
      (if (i32.lt_u ${g('col')} ${g('nc')}) (then
        ${set('src', add(g('b'), mul(mul(g('col'), g('sbn')), i32(4))))}
        ${set('k', g('kc'))}
        (loop $kk
          (f32.store ${g('dst')} (f32.load ${g('src')}))
          ${set('src', add(g('src'), mul(g('sbk'), i32(4))))} ${set('dst', add(g('dst'), i32(NR * 4)))}
          ${set('k', `(i32.sub ${g('k')} ${i32(1)})`)}
          (br_if $kk ${g('k')}))
      ) (else
        ${set('k', g('kc'))}
        (loop $kz
          (f32.store ${g('dst')} (f32.const 0))
          ${set('dst', add(g('dst'), i32(NR * 4)))}
          ${set('k', `(i32.sub ${g('k')} ${i32(1)})`)}
          (br_if $kz ${g('k')}))))
      ${set('col', add(g('col'), i32(1)))}
      (br $cl))))`;
}

// Ap[k][mr] = A(i, k) for i < mr, k < kc. a = address of A(0, 0) of the strip.
function packA() {
  return `
  (func $packA (param $a i32) (param $sam i32) (param $sak i32) (param $mr i32) (param $kc i32) (param $ap i32)
    (local $i i32) (local $k i32) (local $src i32) (local $dst i32) (local $stepK i32)
    ${set('stepK', mul(g('sak'), i32(4)))}
    ${set('i', i32(0))}
    (loop $il
      ${set('src', add(g('a'), mul(mul(g('i'), g('sam')), i32(4))))}
      ${set('dst', add(g('ap'), mul(g('i'), i32(4))))}
      ${set('k', g('kc'))}
      (loop $kl
        (f32.store ${g('dst')} (f32.load ${g('src')}))
        ${set('src', add(g('src'), g('stepK')))} ${set('dst', add(g('dst'), mul(g('mr'), i32(4))))}
        ${set('k', `(i32.sub ${g('k')} ${i32(1)})`)}
        (br_if $kl ${g('k')}))
      ${set('i', add(g('i'), i32(1)))}
      (br_if $il (i32.lt_u ${g('i')} ${g('mr')}))))`;
}

// m rows of C: C(i, 0:n) = sum_k A(i, k) * B(k, 0:n) for i < m, B row-major (unit column
// stride); K >= 0 (K = 0 writes zeros). B is read exactly once as GEMV_STREAMS sequential streams:
// K is cut into that many contiguous chunks of rows and step s adds row s of every chunk into the
// m output rows (which stay in L1/L2), so each stream runs front to back through its chunk, the
// pattern the prefetchers follow (rows interleaved k, k+1, ... at once read at half the speed from
// DRAM), while the output is loaded and stored once per GEMV_STREAMS rows. Leftover rows (K mod
// GEMV_STREAMS) go one at a time. GEMV_UNROLL vectors per iteration, by immediate offsets.
function gemvRow(madd) {
  const { GEMV_UNROLL: U, GEMV_STREAMS: S } = cfg;
  // adds rows pb + r*span (r < streams) times x_r into the m output rows
  const step = (streams, label) => {
    const rs = Array.from({ length: streams }, (_, r) => r);
    const wide = [];
    for (let u = 0; u < U; u++) {
      let y = `(v128.load offset=${16 * u} ${g('cq')})`;
      for (const r of rs) y = madd(g(`x${r}`), `(v128.load offset=${16 * u} ${g(`q${r}`)})`, y);
      wide.push(`            (v128.store offset=${16 * u} ${g('cq')} ${y})`);
    }
    let vec = `(v128.load ${add(g('ci'), g('p'))})`;
    for (const r of rs) vec = madd(g(`x${r}`), `(v128.load ${add(g(`q${r}`), g('p'))})`, vec);
    let one = `(f32.load ${add(g('ci'), g('p'))})`;
    for (const r of rs) one = `(f32.add ${one} (f32.mul (f32x4.extract_lane 0 ${g(`x${r}`)}) (f32.load ${add(g(`q${r}`), g('p'))})))`;
    return `
        ${set('i', i32(0))}
        (loop $${label}_il
          ${rs.map((r) => set(`x${r}`, `(v128.load32_splat ${add(g('a'), mul(add(mul(g('i'), g('sam')), mul(add(g('k'), mul(g('kq'), i32(r))), g('sak'))), i32(4)))})`)).join(' ')}
          ${set('ci', add(g('c'), mul(mul(g('i'), g('ldc')), i32(4))))}
          ${rs.map((r) => set(`q${r}`, r === 0 ? g('pb') : add(g(`q${r - 1}`), g('span')))).join(' ')}
          ${set('cq', g('ci'))} ${set('end', add(g('ci'), g('nU')))}
          (block $${label}_wd (loop $${label}_wl
            (br_if $${label}_wd (i32.ge_u ${g('cq')} ${g('end')}))
${wide.join('\n')}
            ${rs.map((r) => set(`q${r}`, add(g(`q${r}`), i32(16 * U)))).join(' ')} ${set('cq', add(g('cq'), i32(16 * U)))}
            (br $${label}_wl)))
          ${rs.map((r) => set(`q${r}`, r === 0 ? g('pb') : add(g(`q${r - 1}`), g('span')))).join(' ')}
          ${set('p', g('nU'))}
          (block $${label}_vd (loop $${label}_vl
            (br_if $${label}_vd (i32.ge_u ${g('p')} ${g('n4')}))
            (v128.store ${add(g('ci'), g('p'))} ${vec})
            ${set('p', add(g('p'), i32(16)))}
            (br $${label}_vl)))
          (block $${label}_sd (loop $${label}_sl
            (br_if $${label}_sd (i32.ge_u ${g('p')} ${g('nb')}))
            (f32.store ${add(g('ci'), g('p'))} ${one})
            ${set('p', add(g('p'), i32(4)))}
            (br $${label}_sl)))
          ${set('i', add(g('i'), i32(1)))}
          (br_if $${label}_il (i32.lt_u ${g('i')} ${g('m')})))`;
  };
  const locals = Array.from({ length: S }, (_, r) => `(local $x${r} v128) (local $q${r} i32)`).join(' ');
  return `
  (func $gemv_row (param $a i32) (param $sam i32) (param $sak i32) (param $b i32) (param $sbk i32) (param $c i32) (param $ldc i32) (param $m i32) (param $n i32) (param $K i32)
    ${locals} (local $i i32) (local $k i32) (local $kq i32) (local $span i32) (local $cq i32) (local $end i32) (local $p i32) (local $ci i32)
    (local $nb i32) (local $nU i32) (local $n4 i32) (local $pb i32)
    ${set('nb', mul(g('n'), i32(4)))} ${set('n4', `(i32.and ${g('nb')} ${i32(-16)})`)}
    ${set('nU', `(i32.and ${g('nb')} ${i32(-16 * U)})`)}
    ${set('i', i32(0))}
    (loop $zl
      (memory.fill ${add(g('c'), mul(mul(g('i'), g('ldc')), i32(4)))} ${i32(0)} ${g('nb')})
      ${set('i', add(g('i'), i32(1)))}
      (br_if $zl (i32.lt_u ${g('i')} ${g('m')})))
    ;; rows k, k + kq, k + 2kq, ... together for k < kq
    ${set('kq', `(i32.div_u ${g('K')} ${i32(S)})`)} ${set('span', mul(mul(g('kq'), g('sbk')), i32(4)))}
    ${set('pb', g('b'))} ${set('k', i32(0))}
    (block $kd (loop $kl
      (br_if $kd (i32.ge_u ${g('k')} ${g('kq')}))
${step(S, 'g')}
      ${set('k', add(g('k'), i32(1)))} ${set('pb', add(g('pb'), mul(g('sbk'), i32(4))))}
      (br $kl)))
    ;; leftover rows one at a time
    ${set('k', mul(g('kq'), i32(S)))} ${set('kq', i32(0))}
    ${set('pb', add(g('b'), mul(mul(g('k'), g('sbk')), i32(4))))}
    (block $ld (loop $ll
      (br_if $ld (i32.ge_u ${g('k')} ${g('K')}))
${step(1, 'g1')}
      ${set('k', add(g('k'), i32(1)))} ${set('pb', add(g('pb'), mul(g('sbk'), i32(4))))}
      (br $ll))))`;
}

// m rows of C against transposed B: C(i, j) = dot(A(i, 0:K), B^T(j, 0:K)) for i < m, j < n, where
// the rows of A (sam elements apart) and of B^T (sbn apart) are contiguous; K >= 1. As in gemvRow,
// the n rows of B^T are cut into GEMV_STREAMS chunks read front to back together (step j takes row
// j of every chunk, so one load of A serves them all), two vector accumulators per dot product;
// leftover rows one at a time; for m > 1 the rows are re-read from L1.
function gemvDot(madd) {
  const { GEMV_STREAMS: S } = cfg;
  const hsum = (v) => `(call $hsum ${v})`;
  const step = (streams, label) => {
    const rs = Array.from({ length: streams }, (_, r) => r);
    const acc = (r, h) => `d${r}_${h}`;
    return `
        ${set('i', i32(0))}
        (loop $${label}_il
          ${set('ai', add(g('a'), mul(mul(g('i'), g('sam')), i32(4))))}
          ${rs.map((r) => `${set(acc(r, 0), '(v128.const i32x4 0 0 0 0)')} ${set(acc(r, 1), '(v128.const i32x4 0 0 0 0)')}`).join(' ')}
          ${set('p', i32(0))}
          (block $${label}_kd (loop $${label}_kl
            (br_if $${label}_kd (i32.ge_u ${g('p')} ${g('kb8')}))
            ${set('x0', `(v128.load ${add(g('ai'), g('p'))})`)} ${set('x1', `(v128.load offset=16 ${add(g('ai'), g('p'))})`)}
${rs.map((r) => `            ${set(acc(r, 0), madd(g('x0'), `(v128.load ${add(g(`r${r}`), g('p'))})`, g(acc(r, 0))))}
            ${set(acc(r, 1), madd(g('x1'), `(v128.load offset=16 ${add(g(`r${r}`), g('p'))})`, g(acc(r, 1))))}`).join('\n')}
            ${set('p', add(g('p'), i32(32)))}
            (br $${label}_kl)))
          (if (i32.lt_u ${g('p')} ${g('kb4')}) (then
            ${set('x0', `(v128.load ${add(g('ai'), g('p'))})`)}
${rs.map((r) => `            ${set(acc(r, 0), madd(g('x0'), `(v128.load ${add(g(`r${r}`), g('p'))})`, g(acc(r, 0))))}`).join('\n')}
            ${set('p', add(g('p'), i32(16)))}))
${rs.map((r) => `          ${set(`s${r}`, hsum(`(f32x4.add ${g(acc(r, 0))} ${g(acc(r, 1))})`))}`).join('\n')}
          (block $${label}_td (loop $${label}_tl
            (br_if $${label}_td (i32.ge_u ${g('p')} ${g('kb')}))
            ${set('xa', `(f32.load ${add(g('ai'), g('p'))})`)}
${rs.map((r) => `            ${set(`s${r}`, `(f32.add ${g(`s${r}`)} (f32.mul ${g('xa')} (f32.load ${add(g(`r${r}`), g('p'))})))`)}`).join('\n')}
            ${set('p', add(g('p'), i32(4)))}
            (br $${label}_tl)))
          ${set('ci', add(g('c'), mul(add(mul(g('i'), g('ldc')), g('j')), i32(4))))}
${rs.map((r) => `          (f32.store ${r === 0 ? g('ci') : add(g('ci'), mul(mul(g('nq'), i32(r)), i32(4)))} ${g(`s${r}`)})`).join('\n')}
          ${set('i', add(g('i'), i32(1)))}
          (br_if $${label}_il (i32.lt_u ${g('i')} ${g('m')})))`;
  };
  const locals = [];
  for (let r = 0; r < S; r++) locals.push(`(local $d${r}_0 v128) (local $d${r}_1 v128) (local $r${r} i32) (local $s${r} f32)`);
  return `
  (func $hsum (param $v v128) (result f32)
    (local.set $v (f32x4.add ${g('v')} (i8x16.shuffle ${lanes(2, 3, 0, 1)} ${g('v')} ${g('v')})))
    (f32.add (f32x4.extract_lane 0 ${g('v')}) (f32x4.extract_lane 1 ${g('v')})))
  (func $gemv_dot (param $a i32) (param $sam i32) (param $b i32) (param $sbn i32) (param $c i32) (param $ldc i32) (param $m i32) (param $n i32) (param $K i32)
    ${locals.join(' ')} (local $x0 v128) (local $x1 v128) (local $xa f32)
    (local $i i32) (local $j i32) (local $p i32) (local $kb i32) (local $kb4 i32) (local $kb8 i32) (local $ai i32) (local $ci i32)
    (local $nq i32) (local $row i32) (local $span i32)
    ${set('kb', mul(g('K'), i32(4)))} ${set('kb4', `(i32.and ${g('kb')} ${i32(-16)})`)} ${set('kb8', `(i32.and ${g('kb')} ${i32(-32)})`)}
    ${set('row', mul(g('sbn'), i32(4)))}
    ;; rows j, j + nq, j + 2nq, ... together for j < nq
    ${set('nq', `(i32.div_u ${g('n')} ${i32(S)})`)} ${set('span', mul(g('nq'), g('row')))}
    ${set('j', i32(0))}
    (block $jd (loop $jl
      (br_if $jd (i32.ge_u ${g('j')} ${g('nq')}))
      ${Array.from({ length: S }, (_, r) => set(`r${r}`, r === 0 ? add(g('b'), mul(g('j'), g('row'))) : add(g(`r${r - 1}`), g('span')))).join(' ')}
${step(S, 'g')}
      ${set('j', add(g('j'), i32(1)))}
      (br $jl)))
    ;; leftover rows one at a time
    ${set('j', mul(g('nq'), i32(S)))}
    (block $od (loop $ol
      (br_if $od (i32.ge_u ${g('j')} ${g('n')}))
      ${set('r0', add(g('b'), mul(g('j'), g('row'))))}
${step(1, 'g1')}
      ${set('j', add(g('j'), i32(1)))}
      (br $ol))))`;
}

// C[m, n] = 0 (K == 0).
function zeroTile() {
  return `
  (func $zero (param $c i32) (param $ldc i32) (param $m i32) (param $n i32)
    (local $i i32) (local $j i32) (local $p i32)
    (block $id (loop $il
      (br_if $id (i32.ge_u ${g('i')} ${g('m')}))
      ${set('p', add(g('c'), mul(mul(g('i'), g('ldc')), i32(4))))} ${set('j', i32(0))}
      (block $jd (loop $jl
        (br_if $jd (i32.ge_u ${g('j')} ${g('n')}))
        (f32.store ${g('p')} (f32.const 0))
        ${set('p', add(g('p'), i32(4)))} ${set('j', add(g('j'), i32(1)))}
        (br $jl)))
      ${set('i', add(g('i'), i32(1)))}
      (br $il))))`;
}

// One batch entry, rows [m0, m1), columns [n0, n1).
function runOne() {
  const { MR, NR, KC, NC, GEMV_M } = cfg;
  const f = (name) => `(i32.load offset=${P[name]} ${g('p')})`;
  let microDispatch = '';
  for (let mr = 1; mr <= MR; mr++) {
    const call = `(call $micro_${mr} ${g('ap')} (i32.add ${g('bp')} (i32.mul ${g('jr')} (i32.mul ${g('kc')} ${i32(4)}))) ${g('cp')} ${g('ldcB')} ${g('kc')} ${g('accum')} ${g('nr')} ${g('tile')})`;
    microDispatch = mr === 1 ? call : `(if (i32.eq ${g('mr')} ${i32(mr)}) (then ${call}) (else ${microDispatch}))`;
  }
  return `
  (func $run_one (param $p i32) (param $bi i32) (param $m0 i32) (param $m1 i32) (param $n0 i32) (param $n1 i32) (param $scratch i32)
    (local $M i32) (local $K i32) (local $sam i32) (local $sak i32) (local $sbk i32) (local $sbn i32) (local $ldc i32) (local $ldcB i32)
    (local $a i32) (local $b i32) (local $c i32) (local $i i32)
    (local $jc i32) (local $nc i32) (local $pc i32) (local $kc i32) (local $ir i32) (local $mr i32) (local $jr i32) (local $nr i32)
    (local $bp i32) (local $ap i32) (local $tile i32) (local $cp i32) (local $accum i32) (local $t i32) (local $ncb i32) (local $kcb i32)
    (if (i32.ge_s ${g('m0')} ${g('m1')}) (then (return)))
    (if (i32.ge_s ${g('n0')} ${g('n1')}) (then (return)))
    ${set('M', f('M'))} ${set('K', f('K'))}
    ${set('sam', f('sam'))} ${set('sak', f('sak'))} ${set('sbk', f('sbk'))} ${set('sbn', f('sbn'))} ${set('ldc', f('ldc'))}
    ${set('ldcB', mul(g('ldc'), i32(4)))}
    ${set('t', add(f('table'), mul(g('bi'), i32(12))))}
    ${set('a', '(i32.load offset=0 (local.get $t))')} ${set('b', '(i32.load offset=4 (local.get $t))')} ${set('c', '(i32.load offset=8 (local.get $t))')}
    (if (i32.eqz ${g('K')}) (then
      (call $zero (i32.add ${g('c')} (i32.mul (i32.add (i32.mul ${g('m0')} ${g('ldc')}) ${g('n0')}) ${i32(4)})) ${g('ldc')}
        (i32.sub ${g('m1')} ${g('m0')}) (i32.sub ${g('n1')} ${g('n0')}))
      (return)))
    ;; few rows and row-major B: stream B without packing
    (if (i32.and (i32.le_u ${g('M')} ${i32(GEMV_M)}) (i32.eq ${g('sbn')} ${i32(1)})) (then
      (call $gemv_row (i32.add ${g('a')} (i32.mul (i32.mul ${g('m0')} ${g('sam')}) ${i32(4)})) ${g('sam')} ${g('sak')}
        (i32.add ${g('b')} (i32.mul ${g('n0')} ${i32(4)})) ${g('sbk')}
        (i32.add ${g('c')} (i32.mul (i32.add (i32.mul ${g('m0')} ${g('ldc')}) ${g('n0')}) ${i32(4)})) ${g('ldc')}
        (i32.sub ${g('m1')} ${g('m0')}) (i32.sub ${g('n1')} ${g('n0')}) ${g('K')})
      (return)))
    ;; few rows against transposed B, contiguous rows of A: dot products, no packing
    (if (i32.and (i32.le_u ${g('M')} ${i32(GEMV_M)}) (i32.and (i32.eq ${g('sbk')} ${i32(1)}) (i32.eq ${g('sak')} ${i32(1)}))) (then
      (call $gemv_dot (i32.add ${g('a')} (i32.mul (i32.mul ${g('m0')} ${g('sam')}) ${i32(4)})) ${g('sam')}
        (i32.add ${g('b')} (i32.mul (i32.mul ${g('n0')} ${g('sbn')}) ${i32(4)})) ${g('sbn')}
        (i32.add ${g('c')} (i32.mul (i32.add (i32.mul ${g('m0')} ${g('ldc')}) ${g('n0')}) ${i32(4)})) ${g('ldc')}
        (i32.sub ${g('m1')} ${g('m0')}) (i32.sub ${g('n1')} ${g('n0')}) ${g('K')})
      (return)))
    ${set('bp', g('scratch'))}
    ${set('ap', add(g('scratch'), i32(KC * NC * 4)))}
    ${set('tile', add(g('ap'), i32(MR * KC * 4)))}
    ;; block sizes: the fewest blocks of at most NC columns / KC depth, evened out (NC % NR == 0)
    ${set('t', `(i32.div_u (i32.add (i32.sub ${g('n1')} ${g('n0')}) ${i32(NC - 1)}) ${i32(NC)})`)}
    ${set('ncb', `(i32.div_u (i32.add (i32.sub ${g('n1')} ${g('n0')}) (i32.sub ${g('t')} ${i32(1)})) ${g('t')})`)}
    ${set('ncb', `(i32.mul (i32.div_u (i32.add ${g('ncb')} ${i32(NR - 1)}) ${i32(NR)}) ${i32(NR)})`)}
    ${set('t', `(i32.div_u (i32.add ${g('K')} ${i32(KC - 1)}) ${i32(KC)})`)}
    ${set('kcb', `(i32.div_u (i32.add ${g('K')} (i32.sub ${g('t')} ${i32(1)})) ${g('t')})`)}
    ${set('jc', g('n0'))}
    (loop $jcl
      ${set('nc', `(select (i32.sub ${g('n1')} ${g('jc')}) ${g('ncb')} (i32.lt_s (i32.sub ${g('n1')} ${g('jc')}) ${g('ncb')}))`)}
      ${set('pc', i32(0))}
      (loop $pcl
        ${set('kc', `(select (i32.sub ${g('K')} ${g('pc')}) ${g('kcb')} (i32.lt_s (i32.sub ${g('K')} ${g('pc')}) ${g('kcb')}))`)}
        ${set('accum', `(i32.ne ${g('pc')} ${i32(0)})`)}
        (call $packB (i32.add ${g('b')} (i32.mul (i32.add (i32.mul ${g('pc')} ${g('sbk')}) (i32.mul ${g('jc')} ${g('sbn')})) ${i32(4)}))
          ${g('sbk')} ${g('sbn')} ${g('kc')} ${g('nc')} ${g('bp')})
        ${set('ir', g('m0'))}
        (loop $irl
          ${set('mr', `(select (i32.sub ${g('m1')} ${g('ir')}) ${i32(MR)} (i32.lt_s (i32.sub ${g('m1')} ${g('ir')}) ${i32(MR)}))`)}
          (call $packA (i32.add ${g('a')} (i32.mul (i32.add (i32.mul ${g('ir')} ${g('sam')}) (i32.mul ${g('pc')} ${g('sak')})) ${i32(4)}))
            ${g('sam')} ${g('sak')} ${g('mr')} ${g('kc')} ${g('ap')})
          ${set('jr', i32(0))}
          (loop $jrl
            ${set('nr', `(select (i32.sub ${g('nc')} ${g('jr')}) ${i32(NR)} (i32.lt_s (i32.sub ${g('nc')} ${g('jr')}) ${i32(NR)}))`)}
            ${set('cp', `(i32.add ${g('c')} (i32.mul (i32.add (i32.mul ${g('ir')} ${g('ldc')}) (i32.add ${g('jc')} ${g('jr')})) ${i32(4)}))`)}
            ${microDispatch}
            ${set('jr', add(g('jr'), i32(NR)))}
            (br_if $jrl (i32.lt_s ${g('jr')} ${g('nc')})))
          ${set('ir', add(g('ir'), i32(MR)))}
          (br_if $irl (i32.lt_s ${g('ir')} ${g('m1')})))
        ${set('pc', add(g('pc'), g('kcb')))}
        (br_if $pcl (i32.lt_s ${g('pc')} ${g('K')})))
      ${set('jc', add(g('jc'), g('ncb')))}
      (br_if $jcl (i32.lt_s ${g('jc')} ${g('n1')}))))`;
}

// One product C[M, N] = A·B with few rows and row-major B, split over K: task t computes the
// partial product of its K range into C (task 0) or its scratch (others), then counts itself done
// on `sync` (an atomic add, which also publishes its stores); the task that finishes last adds the
// partials into C. Requires K >= nTasks and M·N·4 <= scratchBytes.
function gemvSplit() {
  const f = (name) => `(i32.load offset=${P[name]} ${g('p')})`;
  return `
  (func $gemv_split (param $p i32) (param $task i32) (param $nTasks i32)
    (local $M i32) (local $N i32) (local $K i32) (local $sam i32) (local $sak i32) (local $sbk i32) (local $ldc i32)
    (local $a i32) (local $b i32) (local $c i32) (local $per i32) (local $k0 i32) (local $kn i32) (local $dst i32) (local $ld i32)
    (local $t i32) (local $i i32) (local $q i32) (local $cq i32) (local $e i32) (local $nb i32) (local $n4 i32)
    ${set('M', f('M'))} ${set('N', f('N'))} ${set('K', f('K'))}
    ${set('sam', f('sam'))} ${set('sak', f('sak'))} ${set('sbk', f('sbk'))} ${set('ldc', f('ldc'))}
    ${set('t', f('table'))}
    ${set('a', '(i32.load offset=0 (local.get $t))')} ${set('b', '(i32.load offset=4 (local.get $t))')} ${set('c', '(i32.load offset=8 (local.get $t))')}
    ${set('per', `(i32.div_u (i32.add ${g('K')} (i32.sub ${g('nTasks')} ${i32(1)})) ${g('nTasks')})`)}
    ${set('k0', mul(g('task'), g('per')))}
    ${set('kn', `(select (i32.sub ${g('K')} ${g('k0')}) ${g('per')} (i32.lt_s (i32.sub ${g('K')} ${g('k0')}) ${g('per')}))`)}
    (if (i32.lt_s ${g('kn')} ${i32(0)}) (then ${set('kn', i32(0))}))
    (if (i32.eqz ${g('task')})
      (then ${set('dst', g('c'))} ${set('ld', g('ldc'))})
      (else ${set('dst', add(f('scratch'), mul(g('task'), f('scratchBytes'))))} ${set('ld', g('N'))}))
    (call $gemv_row (i32.add ${g('a')} (i32.mul (i32.mul ${g('k0')} ${g('sak')}) ${i32(4)})) ${g('sam')} ${g('sak')}
      (i32.add ${g('b')} (i32.mul (i32.mul ${g('k0')} ${g('sbk')}) ${i32(4)})) ${g('sbk')} ${g('dst')} ${g('ld')} ${g('M')} ${g('N')} ${g('kn')})
    (if (i32.ne (i32.atomic.rmw.add offset=${P.sync} ${g('p')} ${i32(1)}) (i32.sub ${g('nTasks')} ${i32(1)})) (then (return)))
    ;; last one done: C += every other task's partial
    ${set('nb', mul(g('N'), i32(4)))} ${set('n4', `(i32.and ${g('nb')} ${i32(-16)})`)}
    ${set('t', i32(1))}
    (loop $tl
      ${set('i', i32(0))}
      (loop $il
        ${set('cq', add(g('c'), mul(mul(g('i'), g('ldc')), i32(4))))}
        ${set('q', add(add(f('scratch'), mul(g('t'), f('scratchBytes'))), mul(g('i'), g('nb'))))}
        ${set('e', i32(0))}
        (block $vd (loop $vl
          (br_if $vd (i32.ge_u ${g('e')} ${g('n4')}))
          (v128.store ${add(g('cq'), g('e'))} (f32x4.add (v128.load ${add(g('cq'), g('e'))}) (v128.load ${add(g('q'), g('e'))})))
          ${set('e', add(g('e'), i32(16)))}
          (br $vl)))
        (block $sd (loop $sl
          (br_if $sd (i32.ge_u ${g('e')} ${g('nb')}))
          (f32.store ${add(g('cq'), g('e'))} (f32.add (f32.load ${add(g('cq'), g('e'))}) (f32.load ${add(g('q'), g('e'))})))
          ${set('e', add(g('e'), i32(4)))}
          (br $sl)))
        ${set('i', add(g('i'), i32(1)))}
        (br_if $il (i32.lt_u ${g('i')} ${g('M')})))
      ${set('t', add(g('t'), i32(1)))}
      (br_if $tl (i32.lt_u ${g('t')} ${g('nTasks')}))))`;
}

// Splits the work of all batch entries over nTasks: whole entries per task when there are
// enough of them, else columns (or rows, for tall narrow products) of every entry.
function entry() {
  const { MR, NR, GEMV_M } = cfg;
  const f = (name) => `(i32.load offset=${P[name]} ${g('p')})`;
  return `
  (func $gemm_f32 (param $p i32) (param $task i32) (param $nTasks i32)
    (local $M i32) (local $N i32) (local $nBatch i32) (local $scratch i32) (local $bi i32)
    (local $tilesM i32) (local $tilesN i32) (local $per i32) (local $lo i32) (local $hi i32)
    ${set('M', f('M'))} ${set('N', f('N'))} ${set('nBatch', f('nBatch'))}
    ${set('scratch', add(f('scratch'), mul(g('task'), f('scratchBytes'))))}
    ;; one few-row product with row-major B: split K, so each thread streams its own rows of B
    (if (i32.and (i32.and (i32.gt_u ${g('nTasks')} ${i32(1)}) (i32.eq ${g('nBatch')} ${i32(1)}))
          (i32.and (i32.and (i32.le_u ${g('M')} ${i32(GEMV_M)}) (i32.eq ${f('sbn')} ${i32(1)}))
                   (i32.and (i32.ge_u ${f('K')} ${g('nTasks')}) (i32.le_u (i32.mul (i32.mul ${g('M')} ${g('N')}) ${i32(4)}) ${f('scratchBytes')}))))
      (then (call $gemv_split ${g('p')} ${g('task')} ${g('nTasks')}) (return)))
    (if (i32.or (i32.eq ${g('nTasks')} ${i32(1)})
          (i32.or (i32.ge_u ${g('nBatch')} (i32.mul ${g('nTasks')} ${i32(4)}))
                  (i32.and (i32.ge_u ${g('nBatch')} ${g('nTasks')}) (i32.eqz (i32.rem_u ${g('nBatch')} ${g('nTasks')})))))
      (then
        ${set('bi', g('task'))}
        (block $bd (loop $bl
          (br_if $bd (i32.ge_u ${g('bi')} ${g('nBatch')}))
          (call $run_one ${g('p')} ${g('bi')} ${i32(0)} ${g('M')} ${i32(0)} ${g('N')} ${g('scratch')})
          ${set('bi', add(g('bi'), g('nTasks')))}
          (br $bl)))
        (return)))
    ${set('tilesM', `(i32.div_u (i32.add ${g('M')} ${i32(MR - 1)}) ${i32(MR)})`)}
    ${set('tilesN', `(i32.div_u (i32.add ${g('N')} ${i32(NR - 1)}) ${i32(NR)})`)}
    (if (i32.or (i32.ge_u ${g('tilesN')} (i32.mul ${g('nTasks')} ${i32(4)})) (i32.ge_u ${g('tilesN')} ${g('tilesM')}))
      (then
        ${set('per', `(i32.mul (i32.div_u (i32.add ${g('tilesN')} (i32.sub ${g('nTasks')} ${i32(1)})) ${g('nTasks')}) ${i32(NR)})`)}
        ${set('lo', mul(g('task'), g('per')))}
        ${set('hi', `(select ${g('N')} (i32.add ${g('lo')} ${g('per')}) (i32.gt_u (i32.add ${g('lo')} ${g('per')}) ${g('N')}))`)}
        (if (i32.gt_u ${g('lo')} ${g('N')}) (then ${set('lo', g('N'))}))
        ${set('bi', i32(0))}
        (block $nd (loop $nl
          (br_if $nd (i32.ge_u ${g('bi')} ${g('nBatch')}))
          (call $run_one ${g('p')} ${g('bi')} ${i32(0)} ${g('M')} ${g('lo')} ${g('hi')} ${g('scratch')})
          ${set('bi', add(g('bi'), i32(1)))}
          (br $nl))))
      (else
        ${set('per', `(i32.mul (i32.div_u (i32.add ${g('tilesM')} (i32.sub ${g('nTasks')} ${i32(1)})) ${g('nTasks')}) ${i32(MR)})`)}
        ${set('lo', mul(g('task'), g('per')))}
        ${set('hi', `(select ${g('M')} (i32.add ${g('lo')} ${g('per')}) (i32.gt_u (i32.add ${g('lo')} ${g('per')}) ${g('M')}))`)}
        (if (i32.gt_u ${g('lo')} ${g('M')}) (then ${set('lo', g('M'))}))
        ${set('bi', i32(0))}
        (block $md (loop $ml
          (br_if $md (i32.ge_u ${g('bi')} ${g('nBatch')}))
          (call $run_one ${g('p')} ${g('bi')} ${g('lo')} ${g('hi')} ${i32(0)} ${g('N')} ${g('scratch')})
          ${set('bi', add(g('bi'), i32(1)))}
          (br $ml))))))`;
}

/** What the runtime needs to know about this module (written into generated/kernels.ts). */
export const constants = { P, SCRATCH_BYTES };
