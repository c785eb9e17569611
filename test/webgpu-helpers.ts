// Opening the WebGPU backend for tests. Where no GPU driver exists but Debian's Chromium is
// installed, its SwiftShader Vulkan driver (a CPU implementation) gives Dawn an adapter, so the
// kernels run for real on any machine with /usr/lib/chromium; elsewhere the tests skip and say why.
// ACTLAB_WEBGPU_ICD=none turns SwiftShader off; =PATH picks another Vulkan ICD json.
import { existsSync } from 'node:fs';
import type { Backend } from '../src/tensor/backend.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

export function chooseVulkanDriver(): string {
  const want = process.env.ACTLAB_WEBGPU_ICD;
  if (want === 'none') return 'system Vulkan drivers';
  if (want) { process.env.VK_ICD_FILENAMES = want; return want; }
  if (process.env.VK_ICD_FILENAMES) return process.env.VK_ICD_FILENAMES;
  if (!existsSync('/dev/nvidia0') && !existsSync('/dev/dri') && existsSync(SWIFTSHADER)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER;
    return `SwiftShader (${SWIFTSHADER})`;
  }
  return 'system Vulkan drivers';
}

/** The backend, or the reason there is none. */
export async function openWebGpu(): Promise<{ backend: Backend | null; reason: string; driver: string }> {
  const driver = chooseVulkanDriver();
  try {
    const { createWebGpuBackend } = await import('../src/backends/webgpu/backend.js');
    const backend = await createWebGpuBackend();
    return { backend, reason: '', driver };
  } catch (e) {
    return { backend: null, reason: (e as Error).message, driver };
  }
}
