/**
 * --plot: a Vega-Lite chart of busbw and time against size (log axes, one line per
 * op / dtype / redop series, dashed for in-place), rendered headless to SVG by Vega.
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

/** The Vega-Lite specification: busbw above, time below, sharing the size axis. */
export function plotSpec(rows: readonly Row[], h: Header): Record<string, unknown> {
  const x = { field: 'bytes', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'size (B)' };
  const lines = {
    color: { field: 'series', type: 'nominal', title: 'op dtype redop', legend: { labelLimit: 400 } },
    strokeDash: { field: 'placement', type: 'nominal', title: 'placement' },
  };
  const tooltip = [{ field: 'series' }, { field: 'placement' }, { field: 'bytes' }, { field: 'timeUs' }, { field: 'busbw' }];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `collectives-bench ${h.op}: ${h.worldSize} ranks, ${h.backend}`,
      subtitle: `${h.host}, ${h.cpus} CPUs, Node ${h.node}, Gloo ${h.gloo}`,
    },
    data: { values: plotPoints(rows) },
    vconcat: [
      {
        width: 520,
        height: 240,
        transform: [{ filter: 'datum.busbw > 0' }],
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'busbw', type: 'quantitative', scale: { type: 'log' }, title: 'busbw (GB/s)' }, ...lines, tooltip },
      },
      {
        width: 520,
        height: 240,
        mark: { type: 'line', point: true },
        encoding: { x, y: { field: 'timeUs', type: 'quantitative', scale: { type: 'log' }, title: 'time (µs)' }, ...lines, tooltip },
      },
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
