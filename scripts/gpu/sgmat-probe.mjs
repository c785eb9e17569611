// Diagnostic only: times stripped-down subgroup-matrix kernels on the GPU to find
// where the f16 GEMM of src/backends/webgpu/kernels/matmul-f16.ts loses time: the raw
// multiply-accumulate rate, fragment loads from workgroup memory, and each part of the staging
// (global loads, stores to workgroup memory, barriers) switched on alone or together. The kernels
// compute nothing useful, so nothing is checked. Timing: GPU timestamps around a pass of 30
// dispatches, after 3 s of warm-up, three passes over all modes, best reported (bench/RESULTS.md,
// "WebGPU f16: staging decomposition"). Plain JavaScript on purpose: it runs from the source tree.
// Usage (device, after `source .gpu/setup.sh`): node scripts/gpu/sgmat-probe.mjs MODE[:FM:FN:SGM:SGN],...
// (results also go to $OUT/probe.txt); `print MODE FM FN SGM SGN` prints one kernel's WGSL.
import { create, globals } from 'webgpu';
// PROBE_SHAPE=M,K,N (default 4096,4096,4096; multiples of the tile)
const [M, K, N] = (process.env.PROBE_SHAPE ?? '4096,4096,4096').split(',').map(Number);
const lines = (n, f) => Array.from({ length: n }, (_, i) => f(i)).join('\n');
if (process.argv[2] === 'print') { console.log(kernel(process.argv[3], ...process.argv.slice(4).map(Number))); process.exit(0); }
Object.assign(globalThis, globals);
// PROBE_TOGGLES=disable_robustness,... adds Dawn toggles
const gpu = create([`enable-dawn-features=${['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia', ...(process.env.PROBE_TOGGLES ?? '').split(',').filter(Boolean)].join(',')}`, 'disable-dawn-features=timestamp_quantization']);
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
const feats = ['shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix', 'timestamp-query'].filter((f) => adapter.features.has(f));
const device = await adapter.requestDevice({ requiredFeatures: feats, requiredLimits: Object.fromEntries(['maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX'].map((k) => [k, adapter.limits[k]])) });
device.addEventListener?.('uncapturederror', (e) => console.log('uncaptured', e.error.message));

/**
 * SGM x SGN subgroups of FM x FN 16x16 fragments, k-steps of 32 (64 with K). Workgroup memory holds
 * one block per 16-row slab of A (k fast, stride SA) and per 16-column slab of B (n fast, stride
 * SB), so every fragment load has a constant offset. Mode: `mma` (fragments loaded once, then only
 * multiply-accumulates), `lds` (fragments loaded every step), `lds+FLAGS`:
 *   g  16-byte global loads, prefetched one step ahead in registers (without s: only XORed);
 *   s  stores to workgroup memory (with g: the 8 scalar f16 stores per chunk of the real kernel;
 *      alone: a conflict-free loop of scalar stores);
 *   b  two barriers per step;       l  loads stay at k0 = 0, so they hit L1;
 *   c  cooperative staging: subgroupMatrixLoad from the operands, then subgroupMatrixStore;
 *   m  thread map with 8 consecutive rows per 8 lanes;   d  two buffers, one barrier per step;
 *   2  global loads two steps ahead (two register sets);  K  k-steps of 64;
 *   q  (diagnostic) one f16 of each chunk stored;  w  (diagnostic) 16-byte stores to a u32 shadow;
 *   z  no initialisation of workgroup memory.
 * `x+D` (no workgroup memory): every subgroup loads its fragments straight from operands packed
 * fragment by fragment (a constant offset into one array element per fragment), D k16-steps ahead.
 */
function kernel(mode, FM, FN, SGM, SGN) {
  const BK = mode.includes('K') ? 64 : 32;
  const SA = BK + 8, SB = 24, NT = 32 * SGM * SGN, BM = 16 * FM * SGM, BN = 16 * FN * SGN, NW = SGM * SGN;
  const [base, flags = ''] = mode.split('+');
  if (base === 'x' && (K / 16) % Number(flags || 1)) throw new Error('x+D: D must divide K/16');
  const has = (f) => flags.includes(f);
  const G = has('g'), S = has('s'), B = has('b'), C = has('c');
  const alt = base === 'lds' && !S && !C; // alternate two copies so fragment loads cannot be hoisted
  const NA = (BM / 16) * (alt || has('d') ? 2 : 1), NB = (BN / 16) * (alt || has('d') ? 2 : 1);
  const frags = []; for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) frags.push([i, j]);
  const mmas = frags.map(([i, j]) => `c${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}_${j});`).join('\n');
  const off = alt ? ['(t & 1u) * ' + BM / 16 + 'u + ', '(t & 1u) * ' + BN / 16 + 'u + '] : ['', ''];
  const frLoads = (ks) => `${lines(FM, (i) => `let a${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&At[${off[0]}sgm * ${FM}u + ${i}u], ${ks}u, ${SA}u);`)}
${lines(FN, (j) => `let b${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&Bt[${off[1]}sgn * ${FN}u + ${j}u], ${ks * SB}u, ${SB}u);`)}`;
  const kstep = (ks) => `{\n${frLoads(ks)}\n${mmas} }`;
  let loop;
  if (base === 'x') { // no workgroup memory: fragments straight from operands packed fragment by fragment, D k16-steps ahead
    const D = Number(flags || 1);
    const set = (q) => `${lines(FM, (i) => `var fa${q}_${i}: subgroup_matrix_left<f16, 16, 16>;`)}\n${lines(FN, (j) => `var fb${q}_${j}: subgroup_matrix_right<f16, 16, 16>;`)}`;
    // a[slab * K/16 + kf]: the 16x16 fragment of A rows 16*slab.., k 16*kf.. (row-major); b likewise per 16-column slab
    const load = (q, kf) => `${lines(FM, (i) => `fa${q}_${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&a[(m0 / 16u + sgm * ${FM}u + ${i}u) * ${K / 16}u + ${kf}], 0u, 16u);`)}
${lines(FN, (j) => `fb${q}_${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&b[(n0 / 16u + sgn * ${FN}u + ${j}u) * ${K / 16}u + ${kf}], 0u, 16u);`)}`;
    const mm = (q) => frags.map(([i, j]) => `c${i}_${j} = subgroupMatrixMultiplyAccumulate(fa${q}_${i}, fb${q}_${j}, c${i}_${j});`).join('\n');
    loop = `${lines(D, set)}
${lines(D, (q) => load(q, `${q}u`))}
for (var t = 0u; t < ${K / 16}u; t += ${D}u) {
${lines(D, (q) => `${mm(q)}\nif (t + ${q + D}u < ${K / 16}u) {\n${load(q, `t + ${q + D}u`)}\n}`)}
}`;
  } else if (base === 'mma') {
    loop = `${frLoads(0)}
for (var t = 0u; t < ${K / 16}u; t++) {\n${mmas}\n}`;
  } else {
    let ld = '', st = () => '', decl = '';
    const D = has('d'); // two buffers, one barrier per step
    const bA = (buf) => (buf ? `${buf} * ${BM / 16}u + ` : ''), bB = (buf) => (buf ? `${buf} * ${BN / 16}u + ` : '');
    if (G) {
      const APR = BK / 8, BPR = BN / 8, LA = (BM * APR) / NT, LB = (BK * BPR) / NT;
      // m: lanes 0-7 of each 8 take 8 consecutive rows of one chunk column (conflict-free 16-byte stores)
      decl = has('m')
        ? `let ar = li % 8u + 8u * (li / 32u); let ak = ((li / 8u) % 4u) * 8u; let bk = li % 8u + 8u * (li / ${8 * BPR}u); let bn = ((li / 8u) % ${BPR}u) * 8u;`
        : `let ar = li / ${APR}u; let ak = (li % ${APR}u) * 8u; let bk = li / ${BPR}u; let bn = (li % ${BPR}u) * 8u;`;
      decl += `\n${lines(LA, (l) => `var ra${l}: vec4<u32>;`)}\n${lines(LB, (l) => `var rb${l}: vec4<u32>;`)}`;
      ld = [...Array.from({ length: LA }, (_, l) => `ra${l} = a[((m0 + ar + ${(l * NT) / APR}u) * ${K}u + k0 + ak) >> 3u];`),
        ...Array.from({ length: LB }, (_, l) => `rb${l} = b[((k0 + bk + ${(l * NT) / BPR}u) * ${N}u + n0 + bn) >> 3u];`)].join('\n');
      // q (diagnostic): one f16 of each 8 stored; w (diagnostic): one 16-byte store per chunk into a u32 shadow array
      const st8 = has('w') ? (blk, idx, v) => `${blk.replace(/^At/, 'Wa').replace(/^Bt/, 'Wb')}[(${idx}) / 8u] = ${v};`
        : has('q') ? (blk, idx, v) => `${blk}[${idx}] = bitcast<vec2<f16>>(${v}[0]).x;`
        : (blk, idx, v) => lines(4, (c) => `{ let h = bitcast<vec2<f16>>(${v}[${c}]); ${blk}[${idx} + ${2 * c}u] = h.x; ${blk}[${idx} + ${2 * c + 1}u] = h.y; }`);
      st = (buf) => S ? [...Array.from({ length: LA }, (_, l) => `{ let r = ar + ${(l * NT) / APR}u;\n${st8(`At[${bA(buf)}r / 16u]`, `(r % 16u) * ${SA}u + ak`, `ra${l}`)} }`),
        ...Array.from({ length: LB }, (_, l) => `{\n${st8(`Bt[${bB(buf)}bn / 16u]`, `(bk + ${(l * NT) / BPR}u) * ${SB}u + bn % 16u`, `rb${l}`)} }`), ...(has('w') ? ['At[0][li] = f16(f32(t)); Bt[0][li] = f16(f32(t));'] : [])].join('\n')
        : `sink ^= ${[...Array.from({ length: LA }, (_, l) => `ra${l}.x`), ...Array.from({ length: LB }, (_, l) => `rb${l}.y`)].join(' ^ ')};`;
    } else if (S) {
      st = () => `for (var e = li; e < ${16 * SA}u; e += ${NT}u) { ${lines(BM / 16, (q) => `At[${q}u][e] = f16(f32(t + e));`)} }
for (var e = li; e < ${BK * SB}u; e += ${NT}u) { ${lines(BN / 16, (q) => `Bt[${q}u][e] = f16(f32(t + e));`)} }`;
    } else if (C) {
      const FA = (BM / 16) * 2 / NW, FB = (BN / 16) * 2 / NW;
      decl = lines(FA, (q) => `var sa${q}: subgroup_matrix_left<f16, 16, 16>;`) + '\n' + lines(FB, (q) => `var sb${q}: subgroup_matrix_right<f16, 16, 16>;`);
      ld = [...Array.from({ length: FA }, (_, q) => `sa${q} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&a, (m0 + (sg * ${FA}u + ${q}u) / 2u * 16u) * ${K}u + k0 + ${(q % 2) * 16}u, ${K}u);`),
        ...Array.from({ length: FB }, (_, q) => `sb${q} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&b, (k0 + ${(q % 2) * 16}u) * ${N}u + n0 + (sg * ${FB}u + ${q}u) / 2u * 16u, ${N}u);`)].join('\n');
      st = (buf) => [...Array.from({ length: FA }, (_, q) => `subgroupMatrixStore<row_major>(&At[${bA(buf)}(sg * ${FA}u + ${q}u) / 2u], ${(q % 2) * 16}u, sa${q}, ${SA}u);`),
        ...Array.from({ length: FB }, (_, q) => `subgroupMatrixStore<row_major>(&Bt[${bB(buf)}(sg * ${FB}u + ${q}u) / 2u], ${(q % 2) * 16 * SB}u, sb${q}, ${SB}u);`)].join('\n');
    }
    if (D) {
      off[0] = `(t & 1u) * ${BM / 16}u + `; off[1] = `(t & 1u) * ${BN / 16}u + `;
      loop = `${decl}
var sink = 0u; var k0 = 0u;
${ld}
${st('')}
workgroupBarrier();
k0 = 32u;
${ld}
for (var t = 0u; t < ${K / 32}u; t++) {
  ${kstep(0)}
  ${kstep(16)}
  if (t + 1u < ${K / 32}u) {
    ${st('((t + 1u) & 1u)')}
    k0 = (t + 2u) * 32u;
    if (t + 2u < ${K / 32}u) {\n${ld}\n}
  }
  workgroupBarrier();
}
if (sink == 12345u) { y[0] = 1.0; }`;
    } else if (has('2')) { // loads two steps ahead: two register sets, the loop unrolled by two
      const set = (x, q) => x.replace(/\b(r[ab]\d+)\b/g, `$1_${q}`);
      const vars = decl.split('\n').filter((l) => l.startsWith('var')).join('\n');
      const decl2 = `${decl.split('\n').filter((l) => !l.startsWith('var')).join('\n')}\n${set(vars, 0)}\n${set(vars, 1)}`;
      const half = (q) => `{
  ${B ? 'workgroupBarrier();' : ''}
  ${set(st(''), q)}
  ${B ? 'workgroupBarrier();' : ''}
  k0 = (t + ${q + 2}u) * ${BK}u;
  if (t + ${q + 2}u < ${K / BK}u) {\n${set(ld, q)}\n}
  ${Array.from({ length: BK / 16 }, (_, i) => kstep(16 * i)).join('\n')}
}`;
      loop = `${decl2}
var sink = 0u; var k0 = 0u;
${set(ld, 0)}
k0 = ${BK}u;
${set(ld, 1)}
for (var t = 0u; t < ${K / BK}u; t += 2u) {
${half(0)}
${half(1)}
}
if (sink == 12345u) { y[0] = 1.0; }`;
    } else {
    loop = `${decl}
var sink = 0u; var k0 = 0u;
${ld}
for (var t = 0u; t < ${K / BK}u; t++) {
  ${B ? 'if (t > 0u) { workgroupBarrier(); }' : ''}
  ${st('')}
  ${B ? 'workgroupBarrier();' : ''}
  k0 = ${has('l') ? '0u' : `(t + 1u) * ${BK}u`};
  ${ld ? `if (t + 1u < ${K / BK}u) {\n${ld}\n}` : ''}
  ${Array.from({ length: BK / 16 }, (_, i) => kstep(16 * i)).join('\n')}
}
if (sink == 12345u) { y[0] = 1.0; }`;
    }
  }
  const gt = base === 'x' ? 'array<f16, 256>' : C ? 'f16' : 'vec4<u32>';
  return `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> a: array<${gt}>;
@group(0) @binding(2) var<storage, read> b: array<${gt}>;
${base === 'x' ? '' : `var<workgroup> At: array<array<f16, ${16 * SA}>, ${NA}>;
var<workgroup> Bt: array<array<f16, ${BK * SB}>, ${NB}>;`}
${has('w') ? `var<workgroup> Wa: array<array<vec4<u32>, ${(16 * SA) / 8}>, ${NA}>;\nvar<workgroup> Wb: array<array<vec4<u32>, ${(BK * SB) / 8}>, ${NB}>;` : ''}
@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let sg = li / 32u; let sgm = sg / ${SGN}u; let sgn = sg % ${SGN}u;
  let m0 = wid.y * ${BM}u; let n0 = wid.x * ${BN}u;
${frags.map(([i, j]) => `  var c${i}_${j} = subgroup_matrix_result<f32, 16, 16>();`).join('\n')}
${has('z') || base === 'x' ? '' : `  for (var e = li; e < ${16 * SA}u; e += ${NT}u) { for (var q = 0u; q < ${NA}u; q++) { At[q][e] = f16(f32((e + q) % 7u) * 0.1 - 0.3); } }
  for (var e = li; e < ${BK * SB}u; e += ${NT}u) { for (var q = 0u; q < ${NB}u; q++) { Bt[q][e] = f16(f32((e + q) % 5u) * 0.1 - 0.2); } }`}
  workgroupBarrier();
${loop}
  let base = (m0 + sgm * ${16 * FM}u) * ${N}u + n0 + sgn * ${16 * FN}u;
${frags.map(([i, j]) => `  subgroupMatrixStore<row_major>(&y, base + ${16 * i * N + 16 * j}u, c${i}_${j}, ${N}u);`).join('\n')}
}`;
}

const y = device.createBuffer({ size: M * N * 4, usage: GPUBufferUsage.STORAGE });
// random halves in [-0.5, 0.5) (tensor-core power, and so the clock, depends on the data)
const halves = (n) => { const h = new Uint16Array(n); for (let i = 0; i < n; i++) { const x = Math.random() - 0.5; h[i] = x === 0 ? 0 : ((x < 0 ? 0x8000 : 0) | ((Math.floor(Math.log2(Math.abs(x))) + 15) << 10) | Math.floor((Math.abs(x) / 2 ** Math.floor(Math.log2(Math.abs(x))) - 1) * 1024)); } return h; };
const buf = (h) => { const g = device.createBuffer({ size: h.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST }); device.queue.writeBuffer(g, 0, h); return g; };
const ab = buf(halves(M * K)), bb = buf(halves(K * N));
const qs = device.createQuerySet({ type: 'timestamp', count: 2 });
const qb = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
const rb = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
/** The pipeline of one mode, or the reason it failed. */
async function build(mode, FM, FN, SGM, SGN) {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code: kernel(mode, FM, FN, SGM, SGN) });
  const info = await module.getCompilationInfo();
  for (const m of info.messages) if (m.type === 'error') { await device.popErrorScope(); return `compile error: ${m.message}`; }
  const bgl = device.createBindGroupLayout({ entries: [0, 1, 2].map((binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: binding ? 'read-only-storage' : 'storage' } })) });
  const pipe = device.createComputePipeline({ layout: device.createPipelineLayout({ bindGroupLayouts: [bgl] }), compute: { module, entryPoint: 'main' } });
  const bg = device.createBindGroup({ layout: bgl, entries: [{ binding: 0, resource: { buffer: y } }, { binding: 1, resource: { buffer: ab } }, { binding: 2, resource: { buffer: bb } }] });
  const err = await device.popErrorScope();
  if (err) return `error: ${err.message.split('\n')[0]}`;
  /** GPU time of one pass of n dispatches (timestamps), in ms. */
  return async (n) => {
    const enc = device.createCommandEncoder();
    const p = enc.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } });
    p.setPipeline(pipe); p.setBindGroup(0, bg);
    for (let i = 0; i < n; i++) p.dispatchWorkgroups(N / (16 * SGN * FN), M / (16 * SGM * FM));
    p.end();
    enc.resolveQuerySet(qs, 0, 2, qb, 0);
    enc.copyBufferToBuffer(qb, 0, rb, 0, 16);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const t = new BigInt64Array(rb.getMappedRange().slice(0));
    rb.unmap();
    return Number(t[1] - t[0]) / 1e6;
  };
}
const modes = (process.argv[2] ?? 'mma,lds,lds+b,lds+s,lds+sb,lds+g,lds+gb,lds+gs,lds+gsb').split(',');
const outFile = process.env.OUT ? `${process.env.OUT}/probe.txt` : null;
const fs = await import('node:fs');
const runs = [];
for (const m of modes) {
  const [mode, ...t] = m.split(':');
  const [fm = 4, fn = 4, sgm = 2, sgn = 2] = t.map(Number);
  runs.push([m, await build(mode, fm, fn, sgm, sgn), []]);
}
// warm-up: about 3 s of work so the clocks settle before anything is timed
const warm = runs.find((r) => typeof r[1] !== 'string')?.[1];
if (warm) for (const t0 = performance.now(); performance.now() - t0 < 3000;) await warm(20);
const reps = 30;
for (let pass = 0; pass < 3; pass++) for (const [, run, tf] of runs) if (typeof run !== 'string') tf.push((2 * M * N * K * reps) / ((await run(reps)) / 1e3) / 1e12);
for (const [m, run, tf] of runs) {
  const line = `${m}: ${typeof run === 'string' ? run : `${Math.max(...tf).toFixed(1)} TFLOP/s (passes ${tf.map((x) => x.toFixed(0)).join(' ')})`}`;
  console.log(line);
  if (outFile) fs.appendFileSync(outFile, line + '\n');
}
