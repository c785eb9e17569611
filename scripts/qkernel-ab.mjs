// A/B of two versions of the quantized-product kernel generator (src/backends/wasm/kernels/
// qmatmul.wat.mjs, each beside its qdecode.mjs), in one process on one shared memory: the same
// random weight and activation, single-threaded, A and B interleaved over 60 rounds; prints both
// minimum and median µs per product and the largest difference between their outputs. For kernel
// work on a machine shared with other work, where two separate runs are not comparable.
// Usage: node scripts/qkernel-ab.mjs A/qmatmul.wat.mjs B/qmatmul.wat.mjs q6_k N K [M]
//   (e.g. A = a copy of the kernels folder from `git show HEAD~1:...`); RELAXED=0 for the plain-SIMD build.
import v8 from 'node:v8';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const wabt = await (await import('wabt')).default();
const [fa, fb, type, N, K, M = '1'] = process.argv.slice(2);
if (!fa || !fb || !type || !N || !K) throw new Error('usage: node scripts/qkernel-ab.mjs A.wat.mjs B.wat.mjs TYPE N K [M]');
const Nn = +N, Kn = +K, Mm = +M;
const FEAT = { simd: true, threads: true, relaxed_simd: true };
const mem = new WebAssembly.Memory({ initial: 2000, maximum: 65536, shared: true });
function inst(text) { const m = wabt.parseWat('x.wat', text, FEAT); m.resolveNames(); m.validate(FEAT); const b = m.toBinary({}).buffer; return new WebAssembly.Instance(new WebAssembly.Module(b), { env: { memory: mem } }).exports; }
const A = await import(pathToFileURL(resolve(fa)).href), B = await import(pathToFileURL(resolve(fb)).href);
const relaxed = process.env.RELAXED !== '0';
const ea = inst(A.generate({ relaxed })), eb = inst(B.generate({ relaxed }));
const P = B.P;
const bytes = new Uint8Array(mem.buffer);
let top = 1 << 16;
const al = (n) => { const p = top; top += Math.ceil(n / 64) * 64 + 64; return p; };
// f16 table
const tab = al(65536 * 4);
const f16 = (h) => { const s = h >> 15 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023; return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15); };
const tf = new Float32Array(mem.buffer, tab, 65536); for (let h = 0; h < 65536; h++) tf[h] = f16(h);
const FORMATS = { q4_0: [32, 18, [0]], q8_0: [32, 34, [0]], q6_k: [256, 210, [208]], q4_k: [256, 144, [0, 2]], q5_k: [256, 176, [0, 2]] };
const F = FORMATS[type];
if (!F) throw new Error(`qkernel-ab: no test weights for ${type} (have ${Object.keys(FORMATS).join(", ")})`);
const rowBytes = Kn / F[0] * F[1];
const w = al(Nn * rowBytes);
let seed = 1; const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
for (let i = 0; i < Nn * rowBytes; i++) bytes[w + i] = (rnd() * 256) | 0;
const dv = new DataView(mem.buffer);
for (let b = 0; b < Nn * Kn / F[0]; b++) for (const o of F[2]) dv.setUint16(w + b * F[1] + o, 0x2000 + ((rnd() * 512) | 0), true);
const x = al(Mm * Kn * 4); const xf = new Float32Array(mem.buffer, x, Mm * Kn); for (let i = 0; i < Mm * Kn; i++) xf[i] = rnd() * 2 - 1;
const ya = al(Mm * Nn * 4), yb = al(Mm * Nn * 4);
const scr = (n) => al(n);
const xq = scr(Mm * Kn * 2), xq8 = scr(Mm * Kn), xp = scr(Mm * Kn), xm = scr(Mm * Kn / 2), xd = scr(Mm * Kn / 8), xs = scr(Mm * Kn / 8), xg = scr(Mm * Kn / 8);
const params = (y) => { const p = al(128); const v = new Int32Array(mem.buffer, p, 32); const set = (k, val) => { v[P[k] / 4] = val; };
  set('M', Mm); set('N', Nn); set('K', Kn); set('x', x); set('xq', xq); set('xq8', xq8); set('xp', xp); set('xm', xm); set('xd', xd); set('xs', xs); set('y', y); set('tab', tab); set('rowBytes', rowBytes); set('w', w); set('rowBeg', 0); set('rowEnd', Nn); if (P.xg !== undefined) set('xg', xg); return p; };
const pa = params(ya), pb = params(yb);
const run = (e, p) => { e.qm_quant_x(p, 0, 1); e[`qm_${type}`](p, 0, 1); };
run(ea, pa); run(eb, pb);
const Ya = new Float32Array(mem.buffer, ya, Mm * Nn), Yb = new Float32Array(mem.buffer, yb, Mm * Nn);
let md = 0, mx = 0; for (let i = 0; i < Mm * Nn; i++) { md = Math.max(md, Math.abs(Ya[i] - Yb[i])); mx = Math.max(mx, Math.abs(Ya[i])); }
const ta = [], tb = [];
const reps = Math.max(1, Math.round(3e6 / (Nn * Kn * Mm)));
for (let r = 0; r < 60; r++) {
  for (const [e, p, t] of r & 1 ? [[ea, pa, ta], [eb, pb, tb]] : [[eb, pb, tb], [ea, pa, ta]]) {
    const t0 = performance.now(); for (let k = 0; k < reps; k++) run(e, p); t.push((performance.now() - t0) / reps * 1e3);
  }
}
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor(a.length * f)];
console.log(`${type} ${N}x${K} M=${M} relaxed=${relaxed}: A min ${q(ta,0).toFixed(1)} med ${q(ta,.5).toFixed(1)} µs | B min ${q(tb,0).toFixed(1)} med ${q(tb,.5).toFixed(1)} µs | B/A med ${(q(tb,.5)/q(ta,.5)).toFixed(3)} | max|A-B| ${md.toExponential(2)} (max|A| ${mx.toFixed(2)})`);
