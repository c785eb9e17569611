// Lets the WebGPU tests in Node find a Vulkan loader. Dawn (the `webgpu` package) opens
// `libvulkan.so.1` by name; a machine without Debian's libvulkan1 but with Debian's Chromium has
// one in Chromium's own folder, beside the SwiftShader driver the tests use. The dynamic linker
// reads LD_LIBRARY_PATH only when a process starts, so the test configuration calls this before
// vitest starts its worker processes, which inherit the variable.
import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

const LOADER = 'libvulkan.so.1';

/** Whether the dynamic linker finds a Vulkan loader on its own (ldconfig's cache or LD_LIBRARY_PATH). */
function systemHasLoader(): boolean {
  const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  if (dirs.some((d) => existsSync(join(d, LOADER)))) return true;
  try {
    return execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes(LOADER);
  } catch {
    // No ldconfig on PATH (it sits in /sbin on some systems): look in the usual folders.
    return ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib']
      .some((d) => existsSync(join(d, LOADER)));
  }
}

/** Chromium folders that may hold a loader: ACTLAB_CHROMIUM's folder, then Debian's. */
function chromiumDirs(): string[] {
  const dirs: string[] = [];
  const bin = process.env.ACTLAB_CHROMIUM;
  if (bin && existsSync(bin)) dirs.push(dirname(realpathSync(bin)));
  dirs.push('/usr/lib/chromium');
  return dirs;
}

/**
 * Puts Chromium's folder on LD_LIBRARY_PATH when the system has no Vulkan loader but Chromium
 * carries one. Returns the folder added, or null when nothing was needed or nothing was found.
 */
export function exposeVulkanLoader(): string | null {
  if (process.platform !== 'linux' || systemHasLoader()) return null;
  const dir = chromiumDirs().find((d) => existsSync(join(d, LOADER)));
  if (!dir) return null;
  const rest = process.env.LD_LIBRARY_PATH;
  process.env.LD_LIBRARY_PATH = rest ? `${dir}:${rest}` : dir;
  return dir;
}
