// Formatting helpers the report's sections share (terminal and HTML).
export const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
export const q = (s: string) => JSON.stringify(s);
export const ratio = (x: number) => (x >= 1e6 ? x.toExponential(1) : x.toFixed(1));
export const esc = (s: unknown) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function table(head: string[], rows: (string | number)[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

export function section(id: string, title: string, intro: string, body: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2><p class="intro">${intro}</p>${body}</section>`;
}
