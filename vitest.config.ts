// Test configuration: every test's temporary files go under one folder that is removed when the
// run ends (tests make their folders with os.tmpdir(), which follows TMPDIR). The WebGPU tests
// find Chromium's Vulkan loader when the system has none (test/helpers/vulkan-loader.ts); this
// runs before the worker processes start, so they inherit it.
import { defineConfig } from 'vitest/config';
import { exposeVulkanLoader } from './test/helpers/vulkan-loader.js';

exposeVulkanLoader();

export default defineConfig({
  test: {
    globalSetup: ['./test/helpers/tmp-setup.ts'],
  },
});
