/// <reference types="@webgpu/types" />
// Finding a WebGPU adapter and opening a device: the browser's `navigator.gpu`, or in Node the
// `webgpu` package (Dawn). Asks for the optional features the kernels can use (shader-f16,
// subgroups, subgroup matrices for tensor cores) and the adapter's largest limits.
// Errors say which backend failed and why, so a caller can fall back to a CPU backend.
// Not for: buffers or kernels (runtime.ts, kernels/).
import { envVar } from '../../io/env.js';

export class WebGpuUnavailableError extends Error {
  constructor(detail: string) {
    super(`webgpu backend: ${detail}`);
    this.name = 'WebGpuUnavailableError';
  }
}

export interface DeviceOptions {
  /** 'high-performance' by default. */
  powerPreference?: GPUPowerPreference;
  /** Ask for shader-f16 / subgroup matrices when offered (default true; ACTLAB_WEBGPU_F16=0 sets false). */
  f16?: boolean;
  /**
   * Ask for subgroups when offered (default true; ACTLAB_WEBGPU_SUBGROUPS=0 sets false): false runs
   * the kernels' paths for browsers without them.
   */
  subgroups?: boolean;
  /** Extra Dawn toggles for Node (`create()` flags). */
  dawnFlags?: string[];
  /**
   * Caps on the limits asked for, which are otherwise the adapter's largest: 'default' for
   * WebGPU's defaults (what a browser grants a page that asks for nothing more), or some of them
   * by name. ACTLAB_WEBGPU_LIMITS=default sets 'default' where no caps are given.
   */
  limits?: 'default' | Partial<Record<LimitName, number>>;
}

/** The limits the kernels depend on, with WebGPU's default (guaranteed) values. */
export const WEBGPU_DEFAULT_LIMITS = {
  maxBufferSize: 268435456,
  maxStorageBufferBindingSize: 134217728,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupsPerDimension: 65535,
} as const;
export type LimitName = keyof typeof WEBGPU_DEFAULT_LIMITS;

export interface GpuHandle {
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
  features: {
    f16: boolean;
    subgroups: boolean;
    subgroupMatrix: boolean;
    /** The adapter's smallest subgroup size (0: unknown). */
    subgroupMinSize: number;
    timestamps: boolean;
  };
  adapterInfo: { vendor: string; architecture: string; device: string; description: string };
}

const isNode = () => typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';

/** Dawn toggles that the H200 needs for f16 and tensor cores; harmless elsewhere. */
const NODE_TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'];

/**
 * More Dawn toggles from ACTLAB_DAWN_TOGGLES (comma-separated), for experiments: each is enabled,
 * or disabled when it starts with '-' (`-timestamp_quantization`: GPU timestamps at full resolution).
 */
function envToggles(): { on: string[]; off: string[] } {
  const v = envVar('ACTLAB_DAWN_TOGGLES');
  const all = v ? v.split(',').map((t) => t.trim()).filter(Boolean) : [];
  return { on: all.filter((t) => !t.startsWith('-')), off: all.filter((t) => t.startsWith('-')).map((t) => t.slice(1)) };
}

async function nodeGpu(flags: string[]): Promise<GPU> {
  let mod: { create: (o: string[]) => GPU };
  try {
    const name = 'webgpu'; // a variable keeps bundlers from pulling the Node addon into browser builds
    mod = (await import(/* @vite-ignore */ name)) as typeof mod;
  } catch (e) {
    throw new WebGpuUnavailableError(`the 'webgpu' npm package (Dawn for Node) could not be loaded: ${(e as Error).message}`);
  }
  return mod.create(flags);
}

export async function openDevice(o: DeviceOptions = {}): Promise<GpuHandle> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  let gpu: GPU | undefined = nav?.gpu;
  if (!gpu) {
    if (!isNode()) throw new WebGpuUnavailableError('this browser offers no navigator.gpu (WebGPU is off or unsupported)');
    const t = envToggles();
    const off = t.off.length ? [`disable-dawn-features=${t.off.join(',')}`] : [];
    gpu = await nodeGpu([`enable-dawn-features=${[...NODE_TOGGLES, ...t.on].join(',')}`, ...off, ...(o.dawnFlags ?? [])]);
  }
  const adapter = await gpu.requestAdapter({ powerPreference: o.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new WebGpuUnavailableError(
      'no WebGPU adapter found (no GPU, or no Vulkan/Metal/D3D12 driver for it on this machine)',
    );
  }
  const want: string[] = [];
  const has = (f: string) => adapter.features.has(f as GPUFeatureName);
  const f16 = (o.f16 ?? envVar('ACTLAB_WEBGPU_F16') !== '0') && has('shader-f16');
  if (f16) want.push('shader-f16');
  const subgroups = (o.subgroups ?? envVar('ACTLAB_WEBGPU_SUBGROUPS') !== '0') && has('subgroups');
  if (subgroups) want.push('subgroups');
  const subgroupMatrix = f16 && subgroups && has('chromium-experimental-subgroup-matrix');
  if (subgroupMatrix) want.push('chromium-experimental-subgroup-matrix');
  const timestamps = has('timestamp-query');
  if (timestamps) want.push('timestamp-query');
  const L = adapter.limits;
  const capsOpt = o.limits ?? (envVar('ACTLAB_WEBGPU_LIMITS') === 'default' ? 'default' : undefined);
  const caps: Partial<Record<LimitName, number>> = capsOpt === 'default' ? WEBGPU_DEFAULT_LIMITS : capsOpt ?? {};
  const requiredLimits: Record<string, number> = {};
  for (const name of Object.keys(WEBGPU_DEFAULT_LIMITS) as LimitName[]) {
    const cap = caps[name];
    if (cap !== undefined && (!Number.isInteger(cap) || cap < WEBGPU_DEFAULT_LIMITS[name])) {
      throw new Error(`webgpu backend: limits.${name} = ${cap} is below WebGPU's guaranteed ${WEBGPU_DEFAULT_LIMITS[name]}`);
    }
    requiredLimits[name] = Math.min(L[name], cap ?? Infinity);
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: want as GPUFeatureName[], requiredLimits });
  } catch (e) {
    throw new WebGpuUnavailableError(`the adapter refused a device: ${(e as Error).message}`);
  }
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  return {
    gpu, adapter, device,
    features: { f16, subgroups, subgroupMatrix, timestamps, subgroupMinSize: subgroups ? Number((info as { subgroupMinSize?: number }).subgroupMinSize ?? 0) : 0 },
    adapterInfo: {
      vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '', description: info.description ?? '',
    },
  };
}
