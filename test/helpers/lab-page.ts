// Shared by the lab page tests: builds the page (src/web) into a temporary folder, starts the lab
// server on it, opens Debian's Chromium through playwright-core, and offers the steps the tests
// take on the real page (load, run a view, read its numbers, save a screenshot).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startLabServer, type LabServer, type LabServerOptions } from '../../src/cli/lab-server.js';

export const CHROMIUM = process.env.ACTLAB_CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);

/** Where the screenshots go: $ACTLAB_LAB_SCREENSHOTS, else a folder under the system's temp. */
export const SHOTS = process.env.ACTLAB_LAB_SCREENSHOTS ?? join(tmpdir(), 'actlab-lab-screenshots');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface LabPage {
  lab: LabServer;
  page: Page;
  logs: string[];
  close(): Promise<void>;
}

export async function buildPage(): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'actlab-lab-page-'));
  const { build } = await import('vite');
  await build({ configFile: new URL('../../scripts/vite-lab.config.ts', import.meta.url).pathname, logLevel: 'error', build: { outDir: out, emptyOutDir: true } });
  return out;
}

export async function openLab(o: LabServerOptions): Promise<LabPage> {
  const lab = await startLabServer({ port: 0, ...o });
  const profile = mkdtempSync(join(tmpdir(), 'actlab-chromium-'));
  const { chromium } = await import('playwright-core');
  let ctx: BrowserContext;
  try {
    ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 } });
  } catch (e) {
    await lab.close();
    throw e;
  }
  const page = ctx.pages()[0] ?? await ctx.newPage();
  const logs: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') logs.push(m.text()); });
  page.on('pageerror', (e) => logs.push(String(e)));
  await page.goto(lab.url);
  mkdirSync(SHOTS, { recursive: true });
  return {
    lab, page, logs,
    close: async () => {
      await ctx.close();
      await lab.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Waits until no job is running, and fails with the page's error if one is shown. */
export async function idle(page: Page, timeout = 120_000): Promise<void> {
  await page.waitForFunction(() => !document.querySelector('[data-testid="busy"]'), undefined, { timeout, polling: 100 });
  const err = await page.locator('[data-testid="error"]').textContent({ timeout: 50 }).catch(() => null);
  if (err) throw new Error(`the page shows an error: ${err}`);
}

export async function click(page: Page, testid: string): Promise<void> {
  await page.click(`[data-testid="${testid}"]`);
  await page.waitForTimeout(50);
  await idle(page);
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** The enlarged attention head's pattern as the page holds it: [query][key] (causal part). */
export async function patternOnPage(page: Page): Promise<number[][]> {
  return page.$$eval('[data-testid="pattern-table"] td', (tds) => {
    const rows: number[][] = [];
    for (const td of tds) {
      const q = Number(td.getAttribute('data-q'));
      const k = Number(td.getAttribute('data-k'));
      (rows[q] ??= [])[k] = Number(td.getAttribute('data-value'));
    }
    return rows;
  });
}
