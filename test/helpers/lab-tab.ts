// The page operations the lab page tests take, written once (LabTab) over two drivers: Playwright
// (playwright-core) for Debian's Chromium, and Puppeteer (puppeteer-core, over WebDriver BiDi) for
// Debian's Firefox ESR, since Playwright drives only its own patched Firefox build, which no
// package installs. Each operation waits for its element as Playwright's do (up to a minute: the
// tests run on loaded machines), so the tests read the same in both browsers.
import { existsSync } from 'node:fs';
import type { BrowserContext, Page as PwPage } from 'playwright-core';
import type { Browser as PpBrowser, ElementHandle, Page as PpPage } from 'puppeteer-core';

export type LabBrowserName = 'chromium' | 'firefox';
export const LAB_BROWSERS: readonly LabBrowserName[] = ['chromium', 'firefox'];

/** Where each browser is looked for ($ACTLAB_CHROMIUM, $ACTLAB_FIREFOX), and how to install it. */
export const BROWSER_PATH: Record<LabBrowserName, string> = {
  chromium: process.env.ACTLAB_CHROMIUM ?? '/usr/bin/chromium',
  firefox: process.env.ACTLAB_FIREFOX ?? '/usr/bin/firefox-esr',
};
export const BROWSER_LABEL: Record<LabBrowserName, string> = { chromium: 'Chromium', firefox: 'Firefox' };
const INSTALL: Record<LabBrowserName, string> = { chromium: 'apt-get install chromium', firefox: 'apt-get install firefox-esr' };

export const haveBrowser = (b: LabBrowserName): boolean => existsSync(BROWSER_PATH[b]);
/** Why the tests of browser `b` skip, or null when it is installed. */
export const missingBrowser = (b: LabBrowserName): string | null => (haveBrowser(b) ? null : `${BROWSER_PATH[b]} not found (${INSTALL[b]})`);

const TIMEOUT = 60_000;
const VIEWPORT = { width: 1280, height: 900 };

/** One tab of a browser, as the tests use it. Selectors are CSS. */
export interface LabTab {
  readonly browser: LabBrowserName;
  goto(url: string): Promise<void>;
  /** Replaces an input's or textarea's text, as typing would. */
  fill(selector: string, value: string): Promise<void>;
  click(selector: string): Promise<void>;
  /** Picks the option with this value in a <select> (waiting for the option to exist). */
  select(selector: string, value: string): Promise<void>;
  /** The element's textContent (waiting for the element). */
  text(selector: string): Promise<string | null>;
  /** The first matching element's textContent now, or null when there is none. */
  textNow(selector: string): Promise<string | null>;
  attr(selector: string, name: string): Promise<string | null>;
  /** An input's or textarea's value. */
  value(selector: string): Promise<string>;
  count(selector: string): Promise<number>;
  /** Runs `fn` in the page on every matching element (none: an empty list). */
  evalAll<R>(selector: string, fn: (els: Element[]) => R): Promise<R>;
  /** Runs `fn` in the page on the first matching element. */
  evalOne<A, R>(selector: string, fn: (el: Element, arg: A) => R, arg: A): Promise<R>;
  /** Waits until `fn` returns true in the page. */
  waitFor(fn: () => boolean, timeout?: number): Promise<void>;
  waitForSelector(selector: string, timeout?: number): Promise<void>;
  /** Gives a file input these files (paths on this machine). */
  setFiles(selector: string, files: string[]): Promise<void>;
  screenshot(path: string): Promise<void>;
  /** Another tab of the same browser. */
  newTab(): Promise<LabTab>;
  close(): Promise<void>;
  /** What the page reported as errors: console errors and uncaught exceptions. */
  readonly errors: string[];
}

export interface LabBrowser {
  readonly name: LabBrowserName;
  newTab(): Promise<LabTab>;
  close(): Promise<void>;
}

// WebGPU in the tab on Chromium's own SwiftShader adapter (a CPU implementation: the test
// machines have no GPU)
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader'];

/** Starts browser `name` headless, with its profile in `profileDir` (Chromium) or a profile of Puppeteer's own (Firefox). */
export async function launchBrowser(name: LabBrowserName, profileDir: string): Promise<LabBrowser> {
  if (name === 'chromium') {
    const { chromium } = await import('playwright-core');
    const ctx = await chromium.launchPersistentContext(profileDir, { executablePath: BROWSER_PATH.chromium, headless: true, args: CHROMIUM_FLAGS, viewport: VIEWPORT });
    const first = ctx.pages()[0];
    let used = false;
    return {
      name,
      // The persistent context opens with one page: the first tab asked for is that one.
      newTab: async () => playwrightTab(ctx, !used && first ? (used = true, first) : await ctx.newPage()),
      close: () => ctx.close(),
    };
  }
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({ browser: 'firefox', executablePath: BROWSER_PATH.firefox, headless: true, defaultViewport: VIEWPORT, protocolTimeout: 300_000 });
  return { name, newTab: async () => puppeteerTab(browser, await browser.newPage()), close: () => browser.close() };
}

function playwrightTab(ctx: BrowserContext, page: PwPage): LabTab {
  const errors: string[] = [];
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  return {
    browser: 'chromium',
    errors,
    goto: async (url) => { await page.goto(url); },
    fill: (s, v) => page.fill(s, v),
    click: (s) => page.click(s),
    select: async (s, v) => { await page.selectOption(s, v); },
    text: (s) => page.textContent(s),
    textNow: (s) => page.$$eval(s, (els) => els[0]?.textContent ?? null),
    attr: (s, n) => page.getAttribute(s, n),
    value: (s) => page.inputValue(s),
    count: (s) => page.locator(s).count(),
    evalAll<R>(s: string, fn: (els: Element[]) => R) { return page.$$eval(s, fn as unknown as (els: (SVGElement | HTMLElement)[]) => R); },
    evalOne<A, R>(s: string, fn: (el: Element, arg: A) => R, arg: A) {
      const run = page.$eval.bind(page) as unknown as (sel: string, f: (el: Element, a: A) => R, a: A) => Promise<R>;
      return run(s, fn, arg);
    },
    waitFor: async (fn, timeout = TIMEOUT) => { await page.waitForFunction(fn, undefined, { timeout, polling: 100 }); },
    waitForSelector: async (s, timeout = TIMEOUT) => { await page.waitForSelector(s, { timeout }); },
    setFiles: (s, files) => page.setInputFiles(s, files),
    screenshot: async (path) => { await page.screenshot({ path, fullPage: true }); },
    newTab: async () => playwrightTab(ctx, await ctx.newPage()),
    close: () => page.close(),
  };
}

function puppeteerTab(browser: PpBrowser, page: PpPage): LabTab {
  const errors: string[] = [];
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  const present = async (s: string) => { await page.waitForSelector(s, { timeout: TIMEOUT }); };
  return {
    browser: 'firefox',
    errors,
    goto: async (url) => { await page.goto(url); },
    fill: (s, v) => page.locator(s).fill(v),
    click: (s) => page.locator(s).click(),
    select: async (s, v) => {
      // As Playwright's selectOption: wait until the option is there (lists fill in after a fetch).
      await page.waitForFunction((sel, val) => Array.from((document.querySelector(sel) as HTMLSelectElement | null)?.options ?? []).some((o) => o.value === val), { timeout: TIMEOUT, polling: 100 }, s, v);
      await page.select(s, v);
    },
    text: async (s) => { await present(s); return page.$eval(s, (el) => el.textContent); },
    textNow: (s) => page.$$eval(s, (els) => els[0]?.textContent ?? null),
    attr: async (s, n) => { await present(s); return page.$eval(s, (el, name) => el.getAttribute(name), n); },
    value: async (s) => { await present(s); return page.$eval(s, (el) => (el as HTMLInputElement).value); },
    count: (s) => page.$$eval(s, (els) => els.length),
    evalAll<R>(s: string, fn: (els: Element[]) => R) { return page.$$eval(s, fn) as Promise<R>; },
    evalOne<A, R>(s: string, fn: (el: Element, arg: A) => R, arg: A) { return page.$eval(s, fn as unknown as (el: Element, a: unknown) => R, arg) as Promise<R>; },
    waitFor: async (fn, timeout = TIMEOUT) => { await page.waitForFunction(fn, { timeout, polling: 100 }); },
    waitForSelector: async (s, timeout = TIMEOUT) => { await page.waitForSelector(s, { timeout }); },
    setFiles: async (s, files) => {
      const input = (await page.waitForSelector(s, { timeout: TIMEOUT })) as ElementHandle<HTMLInputElement>;
      try {
        await input.uploadFile(...files);
      } finally {
        await input.dispose();
      }
    },
    screenshot: async (path) => { await page.screenshot({ path: path as `${string}.png`, fullPage: true }); },
    newTab: async () => puppeteerTab(browser, await browser.newPage()),
    close: () => page.close(),
  };
}
