// Builders of WebAssembly text shared by the kernel generators (not a kernel module itself:
// build-wasm only assembles `*.wat.mjs`): locals, constants and f32 addresses as WAT s-expressions.

/** `(local.get $n)` */
export const g = (n) => `(local.get $${n})`;
/** `(local.set $n v)` */
export const set = (n, v) => `(local.set $${n} ${v})`;
/** n += by (an i32 local; `by` a number or a WAT expression) */
export const inc = (n, by) => set(n, `(i32.add ${g(n)} ${typeof by === 'number' ? `(i32.const ${by})` : by})`);
/** `(i32.const n)` */
export const i32 = (n) => `(i32.const ${n})`;
/** Address of f32 base[idx] (base a local, idx a WAT expression). */
export const F = (base, idx) => `(i32.add ${g(base)} (i32.shl ${idx} ${i32(2)}))`;
