/**
 * --plot: a Vega-Lite chart of busbw and time against size (log axes, one line per
 * op / dtype / redop series; out-of-place solid with circles, in-place dashed with
 * squares; sizes labelled 4K, 4M as the flags take them), rendered headless to SVG by Vega.
 * vega and vega-lite are loaded only here, and only when a plot is asked for.
 */

import * as fs from 'node:fs';
import { pathToFileURL } from 'node:url';

import type { Header, Row } from './report';

interface Point {
  series: string;
  placement: string;
  bytes: number;
  timeUs: number;
  busbw: number;
}

export function plotPoints(rows: readonly Row[]): Point[] {
  const points: Point[] = [];
  for (const r of rows) {
    if (r.bytes <= 0) continue;
    const series = [r.op, r.dtype, r.redop === 'none' ? '' : r.redop].filter((s) => s !== '').join(' ');
    for (const [placement, c] of [
      ['out-of-place', r.outOfPlace],
      ['in-place', r.inPlace],
    ] as const) {
      if (c !== null) points.push({ series, placement, bytes: r.bytes, timeUs: c.timeUs, busbw: c.busbw });
    }
  }
  return points;
}

/** At most this many sizes get a label on the x axis; more would run into each other at 520 px. */
const MAX_SIZE_LABELS = 14;

/**
 * The sizes that get a tick and a label: every size of the sweep, or every k-th one counted
 * from the largest (which always has one) when there are more than MAX_SIZE_LABELS.
 */
export function sizeTicks(rows: readonly Row[]): number[] {
  const sizes = [...new Set(rows.filter((r) => r.bytes > 0).map((r) => r.bytes))].sort((a, b) => a - b);
  if (sizes.length <= MAX_SIZE_LABELS) return sizes;
  const step = Math.ceil(sizes.length / MAX_SIZE_LABELS);
  return sizes.filter((_, i) => (sizes.length - 1 - i) % step === 0);
}

/**
 * A Vega expression that writes a byte count as the size flags take it (8, 4K, 64M, 1G:
 * powers of 1024), instead of Vega's default 4,194,304.
 */
export const SIZE_LABEL_EXPR = [
  ['1073741824', 'G'],
  ['1048576', 'M'],
  ['1024', 'K'],
].reduceRight(
  (rest, [unit, suffix]) => `datum.value >= ${unit} ? format(datum.value / ${unit}, '~g') + '${suffix}' : ${rest}`,
  "format(datum.value, '~g')",
);

/**
 * Out-of-place and in-place differ in the line's dash and in the points' shape, so that the
 * legend tells them apart: a legend symbol shows a shape and its outline's dash, and with
 * the dash alone both entries were the same dot.
 */
const PLACEMENTS = ['out-of-place', 'in-place'];
const placement = {
  strokeDash: { field: 'placement', type: 'nominal', title: 'placement', scale: { domain: PLACEMENTS, range: [[1, 0], [6, 3]] } },
  shape: {
    field: 'placement',
    type: 'nominal',
    title: 'placement',
    scale: { domain: PLACEMENTS, range: ['circle', 'square'] },
    // The legend's symbols take no series colour: drawn dark, open as on the chart.
    legend: { symbolStrokeColor: '#333', symbolStrokeWidth: 1.5, symbolSize: 60, symbolOpacity: 1 },
  },
};

/** The Vega-Lite specification: busbw above, time below, sharing the size axis. */
export function plotSpec(rows: readonly Row[], h: Header): Record<string, unknown> {
  const x = {
    field: 'bytes',
    type: 'quantitative',
    scale: { type: 'log', base: 2 },
    title: 'size (B)',
    axis: { values: sizeTicks(rows), labelExpr: SIZE_LABEL_EXPR, labelOverlap: false, labelFlush: false, grid: true },
  };
  const color = { field: 'series', type: 'nominal', title: 'op dtype redop', legend: { labelLimit: 400 } };
  const tooltip = [{ field: 'series' }, { field: 'placement' }, { field: 'bytes' }, { field: 'timeUs' }, { field: 'busbw' }];
  // One line per series and placement, and points on it whose shape tells the placement.
  const panel = (y: Record<string, unknown>, filter?: string): Record<string, unknown> => ({
    width: 520,
    height: 240,
    ...(filter === undefined ? {} : { transform: [{ filter }] }),
    encoding: { x, y, color, tooltip },
    layer: [
      { mark: { type: 'line' }, encoding: { strokeDash: placement.strokeDash } },
      {
        mark: { type: 'point', filled: false, size: 40, strokeWidth: 1.5 },
        encoding: { shape: placement.shape, strokeDash: placement.strokeDash },
      },
    ],
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `collectives-bench ${h.op}: ${h.worldSize} ranks, ${h.backend}`,
      subtitle: `${h.host}, ${h.cpus} CPUs, Node ${h.node}, Gloo ${h.gloo}`,
    },
    data: { values: plotPoints(rows) },
    vconcat: [
      panel({ field: 'busbw', type: 'quantitative', scale: { type: 'log' }, title: 'busbw (GB/s)' }, 'datum.busbw > 0'),
      panel({ field: 'timeUs', type: 'quantitative', scale: { type: 'log' }, title: 'time (µs)' }),
    ],
  };
}

interface VegaLite {
  compile(spec: unknown): { spec: unknown };
}
interface Vega {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => { toSVG(): Promise<string>; finalize(): void };
}

// vega and vega-lite are ES modules only, and TypeScript turns import() into require() for
// CommonJS output; a function built at run time keeps Node's own import().
const importUrl = new Function('url', 'return import(url)') as (url: string) => Promise<unknown>;

const PLOT_PACKAGES = ['vega', 'vega-lite'];

/**
 * The plot libraries are optional peer dependencies (only --plot needs them): the message
 * a missing one gets, or null when both are installed.
 */
export function missingPlotLibraries(): string | null {
  const missing = PLOT_PACKAGES.filter((name) => {
    try {
      require.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return null;
  return `--plot needs the optional packages vega and vega-lite; ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed (npm install vega vega-lite)`;
}

async function load<T>(name: string): Promise<T> {
  const missing = missingPlotLibraries();
  if (missing !== null) throw new Error(missing);
  return (await importUrl(pathToFileURL(require.resolve(name)).href)) as T;
}

export async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  const vl = await load<VegaLite>('vega-lite');
  const vega = await load<Vega>('vega');
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function writePlot(file: string, rows: readonly Row[], h: Header): Promise<void> {
  fs.writeFileSync(file, await renderSvg(plotSpec(rows, h)));
}
