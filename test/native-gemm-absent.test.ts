// The Node adapter of the native GEMM when onnxruntime-node (or protobufjs) is not installed, as
// with `npm install --omit=optional`: simulated by a module loader that cannot find them. The
// adapter must say why, and the wasm backend must then run its products on wasm SIMD.
import { describe, expect, it, vi } from 'vitest';

const missing = new Set<string>();
vi.mock('node:module', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:module')>();
  const createRequire = (from: string | URL) => {
    const req = real.createRequire(from);
    const wrapped = ((id: string) => {
      if ([...missing].some((m) => id === m || id.startsWith(`${m}/`))) {
        throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
      }
      return req(id);
    }) as NodeJS.Require;
    return Object.assign(wrapped, { resolve: req.resolve, cache: req.cache, main: req.main, extensions: req.extensions });
  };
  return { ...real, default: { ...real, createRequire }, createRequire };
});

const { loadNativeGemm } = await import('../src/io/node/native-gemm.js');
const { createWasmBackend } = await import('../src/backends/wasm/backend.js');
const { createNodePlatform } = await import('../src/io/node/platform.js');
const { setPlatform } = await import('../src/io/platform.js');

describe('native GEMM absent', () => {
  it('without onnxruntime-node: no native GEMM, with the reason', () => {
    missing.clear();
    missing.add('onnxruntime-node');
    const r = loadNativeGemm(2);
    expect(r.gemm).toBeNull();
    expect((r as { reason: string }).reason).toMatch(/onnxruntime-node is not installed or does not load \(Cannot find module 'onnxruntime-node'\)/);
  });

  it('without protobufjs: no native GEMM, with the reason', () => {
    missing.clear();
    missing.add('protobufjs');
    const r = loadNativeGemm(2);
    expect(r.gemm).toBeNull();
    expect((r as { reason: string }).reason).toMatch(/protobufjs is not installed/);
  });

  it('the wasm backend on such a Node install runs on wasm and says so once', async () => {
    missing.clear();
    missing.add('onnxruntime-node');
    setPlatform(createNodePlatform());
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const a = await createWasmBackend({ threads: 1 });
      const b = await createWasmBackend({ threads: 1 });
      expect(String(a.info().nativeGemm)).toMatch(/^off \(onnxruntime-node is not installed/);
      expect(String(b.info().nativeGemm)).toMatch(/^off \(onnxruntime-node is not installed/);
      const said = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('no native GEMM'));
      expect(said).toEqual(["actlab: no native GEMM (onnxruntime-node is not installed or does not load (Cannot find module 'onnxruntime-node')); large matrix products run on wasm SIMD"]);
      a.dispose();
      b.dispose();
    } finally {
      warn.mockRestore();
    }
  });
});
