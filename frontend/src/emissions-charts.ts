// Hand-made SVG charts for the emissions pages: nothing is loaded from elsewhere at run time and
// no chart library is bundled. Every drawn mark carries its series, category and value in data-*
// attributes (and a <title> tooltip), so a reader of the page and a test can check what was drawn.

const SVG = "http://www.w3.org/2000/svg";

export interface Series {
  key: string;
  label: string;
  color: string;
  /** One value per category; null is a figure withheld (drawn as nothing, noted in the tooltip). */
  values: Array<number | null>;
}

export interface Slice {
  key: string;
  label: string;
  color: string;
  value: number;
}

/** Colours of the series, in order (colour-blind safe, from Okabe-Ito). */
export const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#999999"];

function el<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  text?: string,
): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A "nice" upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten at or above ``x``. */
export function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x - 1e-9) return m * p;
  return 10 * p;
}

function legend(items: Array<{ key: string; label: string; color: string; note?: string }>): HTMLUListElement {
  const ul = document.createElement("ul");
  ul.className = "chart-legend";
  for (const it of items) {
    const li = document.createElement("li");
    li.dataset.series = it.key;
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = it.color;
    li.append(sw, ` ${it.label}${it.note ? ` ${it.note}` : ""}`);
    ul.append(li);
  }
  return ul;
}

/**
 * Stacked columns, one per category (a month), one segment per series with a value above 0.
 * ``fmt`` writes a value with its unit (tooltips), ``axis`` one without (the axis, whose unit
 * ``unit`` is written above it). The container gets
 * ``data-marks`` (segments drawn) and ``data-withheld`` (null figures).
 */
export function stackedBars(
  container: HTMLElement,
  categories: string[],
  labels: string[],
  series: Series[],
  fmt: (v: number) => string,
  axis: (v: number) => string,
  unit: string,
  title: string,
): void {
  const W = 640;
  const H = 270;
  const left = 56;
  const right = 8;
  const top = 22;
  const bottom = 28;
  const n = Math.max(categories.length, 1);
  const totals = categories.map((_, i) => series.reduce((s, se) => s + Math.max(se.values[i] ?? 0, 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const y = (v: number) => top + (H - top - bottom) * (1 - v / max);
  const band = (W - left - right) / n;
  const bw = Math.max(band * 0.7, 2);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart stacked", "aria-label": title });
  svg.append(el("title", {}, title));
  const ax = el("g", { class: "axis" });
  ax.append(el("text", { x: 4, y: 12, class: "unit" }, unit));
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    ax.append(
      el("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid" }),
      el("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end" }, axis(v)),
    );
  }
  categories.forEach((_, i) => {
    ax.append(el("text", { x: left + band * i + band / 2, y: H - 10, "text-anchor": "middle" }, labels[i] ?? ""));
  });
  svg.append(ax);
  let marks = 0;
  let withheld = 0;
  const base = categories.map(() => 0);
  for (const se of series) {
    const g = el("g", { class: "series", "data-series": se.key, fill: se.color });
    se.values.forEach((v, i) => {
      if (v === null) {
        withheld++;
        return;
      }
      if (!(v > 0) || i >= n) return;
      const y0 = y(base[i]);
      const y1 = y(base[i] + v);
      base[i] += v;
      const r = el("rect", {
        class: "bar",
        x: left + band * i + (band - bw) / 2,
        y: y1,
        width: bw,
        height: Math.max(y0 - y1, 0.5),
        "data-category": categories[i],
        "data-value": v,
      });
      r.append(el("title", {}, `${labels[i] ?? categories[i]} · ${se.label}: ${fmt(v)}`));
      g.append(r);
      marks++;
    });
    svg.append(g);
  }
  container.replaceChildren(svg, legend(series));
  container.dataset.marks = String(marks);
  container.dataset.withheld = String(withheld);
}

function arc(cx: number, cy: number, r0: number, r1: number, a0: number, a1: number): string {
  const p = (r: number, a: number) => `${(cx + r * Math.sin(a)).toFixed(2)} ${(cy - r * Math.cos(a)).toFixed(2)}`;
  const large = a1 - a0 > Math.PI ? 1 : 0;
  return `M ${p(r1, a0)} A ${r1} ${r1} 0 ${large} 1 ${p(r1, a1)} L ${p(r0, a1)} A ${r0} ${r0} 0 ${large} 0 ${p(r0, a0)} Z`;
}

/** A donut of the slices' shares (slices of 0 are listed in the legend, not drawn). */
export function donut(container: HTMLElement, slices: Slice[], fmt: (v: number) => string, title: string): void {
  const size = 200;
  const c = size / 2;
  const r1 = 90;
  const r0 = 52;
  const total = slices.reduce((s, x) => s + Math.max(x.value, 0), 0);
  const svg = el("svg", { viewBox: `0 0 ${size} ${size}`, role: "img", class: "chart donut", "aria-label": title });
  svg.append(el("title", {}, title));
  let marks = 0;
  let a = 0;
  for (const s of slices) {
    if (!(s.value > 0) || !(total > 0)) continue;
    const share = s.value / total;
    // A whole circle cannot be one arc: draw it as two halves of one path.
    const d =
      share >= 0.9999
        ? `${arc(c, c, r0, r1, 0, Math.PI)} ${arc(c, c, r0, r1, Math.PI, 2 * Math.PI)}`
        : arc(c, c, r0, r1, a, a + share * 2 * Math.PI);
    const path = el("path", { class: "slice", d, fill: s.color, "data-series": s.key, "data-value": s.value });
    path.append(el("title", {}, `${s.label}: ${fmt(s.value)} (${(share * 100).toFixed(1)} %)`));
    svg.append(path);
    a += share * 2 * Math.PI;
    marks++;
  }
  svg.append(el("text", { x: c, y: c + 5, "text-anchor": "middle", class: "donut-total" }, fmt(total)));
  const items = slices.map((s) => ({
    ...s,
    note: `${fmt(s.value)}${total > 0 ? ` (${((Math.max(s.value, 0) / total) * 100).toFixed(1)} %)` : ""}`,
  }));
  container.replaceChildren(svg, legend(items));
  container.dataset.marks = String(marks);
}
