// Environment variables where the runtime has them (Node, Deno, Bun), undefined in a browser: the
// one place the core reads `process.env`, so the same code runs in both (ACTLAB_* switches).
type WithProcess = { process?: { env?: Record<string, string | undefined> } };

/** The value of environment variable `name`, or undefined (no such variable, or no environment). */
export function envVar(name: string): string | undefined {
  return (globalThis as WithProcess).process?.env?.[name];
}
