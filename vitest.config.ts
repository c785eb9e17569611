// Test configuration: every test's temporary files go under one folder that is removed when the
// run ends (tests make their folders with os.tmpdir(), which follows TMPDIR).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['./test/helpers/tmp-setup.ts'],
  },
});
