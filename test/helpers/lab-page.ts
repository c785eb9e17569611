// Shared by the lab page tests: builds the page (src/web) into a temporary folder, starts the lab
// server on it, opens a browser on it (Debian's Chromium through playwright-core, or Debian's
// Firefox ESR through puppeteer-core: test/helpers/lab-tab.ts), and offers the steps the tests take
// on the real page (load, run a view, read its numbers, save a screenshot).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startLabServer, type LabServer, type LabServerOptions } from '../../src/cli/lab-server.js';
import type { LabModel } from '../../src/lab/views.js';
import { launchBrowser, type LabBrowserName, type LabTab } from './lab-tab.js';

export { BROWSER_LABEL, LAB_BROWSERS, missingBrowser, type LabBrowserName, type LabTab } from './lab-tab.js';

/** Where the screenshots go: $ACTLAB_LAB_SCREENSHOTS, else a folder under the system's temp. Firefox's carry a "firefox-" prefix. */
export const SHOTS = process.env.ACTLAB_LAB_SCREENSHOTS ?? join(tmpdir(), 'actlab-lab-screenshots');

export interface LabPage {
  lab: LabServer;
  page: LabTab;
  /** Another tab of the same browser. */
  newTab(): Promise<LabTab>;
  /** What the first tab reported as errors. */
  logs: string[];
  close(): Promise<void>;
}

export async function buildPage(): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'actlab-lab-page-'));
  const { build } = await import('vite');
  await build({ configFile: new URL('../../scripts/vite-lab.config.ts', import.meta.url).pathname, logLevel: 'error', build: { outDir: out, emptyOutDir: true } });
  return out;
}

export async function openLab(o: LabServerOptions, browserName: LabBrowserName = 'chromium'): Promise<LabPage> {
  const lab = await startLabServer({ port: 0, ...o });
  const profile = mkdtempSync(join(tmpdir(), `actlab-${browserName}-`));
  let browser;
  try {
    browser = await launchBrowser(browserName, profile);
  } catch (e) {
    await lab.close();
    throw e;
  }
  const page = await browser.newTab();
  await page.goto(lab.url);
  mkdirSync(SHOTS, { recursive: true });
  return {
    lab, page, logs: page.errors,
    newTab: () => browser.newTab(),
    close: async () => {
      await browser.close();
      await lab.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** What a suite of lab page cases shares: the open page, the library's model to compare with, a scratch folder. */
export interface LabSession {
  lp: LabPage;
  ref: LabModel;
  /** A temporary folder the server may read (removed after the suite). */
  work: string;
  /** The built page (served by the lab server; removed after the suite). */
  pageDir: string;
}

/**
 * Registers the suite's set-up and tear-down: builds the page, makes a scratch folder, starts the
 * server on `dirs` plus that folder and opens `browser` on it, and loads the reference model with
 * `loadRef`. The returned object is filled in `beforeAll`; read it inside the cases.
 */
export function labSession(browser: LabBrowserName, dirs: string[], loadRef: () => Promise<LabModel>): LabSession {
  const s = {} as LabSession;
  beforeAll(async () => {
    s.pageDir = await buildPage();
    s.work = mkdtempSync(join(tmpdir(), 'actlab-lab-work-'));
    s.lp = await openLab({ staticDir: s.pageDir, dirs: [...dirs, s.work] }, browser);
    s.ref = await loadRef();
    console.log(`screenshots: ${SHOTS}`);
  }, 180_000);
  afterAll(async () => {
    await s.lp?.close();
    s.ref?.model.dispose();
    for (const d of [s.pageDir, s.work]) if (d) rmSync(d, { recursive: true, force: true });
  });
  return s;
}

/** Waits until no job is running, and fails with the page's error if one is shown. */
export async function idle(page: LabTab, timeout = 120_000): Promise<void> {
  await page.waitFor(() => !document.querySelector('[data-testid="busy"]'), timeout);
  const err = await page.textNow('[data-testid="error"]');
  if (err) throw new Error(`the page shows an error: ${err}`);
}

export async function click(page: LabTab, testid: string): Promise<void> {
  await page.click(`[data-testid="${testid}"]`);
  await new Promise((ok) => setTimeout(ok, 50));
  await idle(page);
}

/** Saves a screenshot of the whole page as NAME.png (Chromium) or firefox-NAME.png. */
export async function shot(page: LabTab, name: string): Promise<void> {
  await page.screenshot(join(SHOTS, `${page.browser === 'chromium' ? '' : `${page.browser}-`}${name}.png`));
}

/** The enlarged attention head's pattern as the page holds it: [query][key] (causal part). */
export async function patternOnPage(page: LabTab): Promise<number[][]> {
  return page.evalAll('[data-testid="pattern-table"] td', (tds) => {
    const rows: number[][] = [];
    for (const td of tds) {
      const q = Number(td.getAttribute('data-q'));
      const k = Number(td.getAttribute('data-k'));
      (rows[q] ??= [])[k] = Number(td.getAttribute('data-value'));
    }
    return rows;
  });
}
