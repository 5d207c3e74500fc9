/** nccl-tests' table: the header comment lines, one line per row, the closing lines. */

import type { Cell, Header, Row, Summary } from './report';

const COMBINE_WORDS = { rank0: 'rank 0', avg: 'average', min: 'minimum', max: 'maximum' } as const;
const COMBINE_FLAG = { rank0: 0, avg: 1, min: 2, max: 3 } as const;

/** What the numbers depend on, as `#` lines. */
export function formatHeader(h: Header): string[] {
  const mode = h.blocking
    ? 'each awaited before the next is issued (-z 1)'
    : "issued back to back, then awaited together (nccl-tests' mode)";
  const started =
    h.startedBy === 'launcher' ? `   (one of ${h.worldSize} ranks a launcher started: run it again under the same launcher)` : '';
  return [
    `# ${h.command}${started}`,
    `# collectives ${h.version}, backend ${h.backend}, world size ${h.worldSize}, host ${h.host}, ` +
      `${h.cpus} CPUs (${h.cpuModel}), Node ${h.node}, Gloo ${h.gloo}, Node-API ${h.napi}`,
    `# time: per call, ${h.warmup} warm-up + ${h.iters} timed calls per cell ${mode}; ` +
      `elapsed / ${h.iters} on each rank, ${COMBINE_WORDS[h.combine]} over ranks (-a ${COMBINE_FLAG[h.combine]})`,
    ...(h.engine?.name === 'mpi' ? [`# engine: mpi (${h.engine.how}); host calls run on MPI, so the gloo line below does not apply to them`] : []),
    h.check
      ? '# check: one more call per cell after the timed ones, inputs exact in any order; #wrong = elements that differ bit for bit, summed over ranks'
      : '# check: off (-c 0)',
    `# gloo: mode ${h.tuning.mode}, all-reduce algorithm ${h.tuning.allReduceAlgorithm}, busy polling ${h.tuning.busyPoll ? 'on' : 'off'}, ` +
      `inline path ${h.tuning.inlineBytes ? `up to ${h.tuning.inlineBytes} bytes` : 'off'}; ` +
      'algo: what ran each row (Communicator.algorithm)',
    '#',
  ];
}

const CELL_WIDTHS = [7, 6, 6, 6];

/** The column titles. */
export function formatTableHead(): string[] {
  // A cell is 33 characters wide: four fields, each after two spaces.
  const cellTitle = (title: string): string => title.padStart(17 + Math.ceil(title.length / 2)).padEnd(33);
  const left = (a: string[]): string =>
    `# ${a[0].padStart(10)}  ${a[1].padStart(12)}  ${a[2].padStart(8)}  ${a[3].padStart(6)}  ${a[4].padStart(6)}`;
  const cell = (a: string[]): string => a.map((s, i) => `  ${s.padStart(CELL_WIDTHS[i])}`).join('');
  return [
    `${left(['', '', '', '', ''])}${cellTitle('out-of-place')}${cellTitle('in-place')}`.trimEnd(),
    `${left(['size', 'count', 'type', 'redop', 'root'])}${cell(['time', 'algbw', 'busbw', '#wrong'])}${cell(['time', 'algbw', 'busbw', '#wrong'])}  algo`,
    `${left(['(B)', '(elements)', '', '', ''])}${cell(['(us)', '(GB/s)', '(GB/s)', ''])}${cell(['(us)', '(GB/s)', '(GB/s)', ''])}`.trimEnd(),
  ];
}

/** nccl-tests' time format: fewer decimals as the time grows. */
export function formatTime(us: number): string {
  if (us >= 10000) return us.toFixed(0);
  if (us >= 100) return us.toFixed(1);
  return us.toFixed(2);
}

function formatCell(c: Cell | null, sized: boolean): string {
  const fields =
    c === null
      ? ['N/A', 'N/A', 'N/A', 'N/A']
      : [
          formatTime(c.timeUs),
          sized ? c.algbw.toFixed(2) : 'N/A',
          sized ? c.busbw.toFixed(2) : 'N/A',
          c.wrong === null ? 'N/A' : String(c.wrong),
        ];
  return fields.map((s, i) => `  ${s.padStart(CELL_WIDTHS[i])}`).join('');
}

export function formatRow(r: Row): string {
  const sized = r.bytes > 0 || r.count > 0;
  return (
    `${String(r.bytes).padStart(12)}  ${String(r.count).padStart(12)}  ${r.dtype.padStart(8)}  ${r.redop.padStart(6)}  ` +
    `${String(r.root).padStart(6)}${formatCell(r.outOfPlace, sized)}${formatCell(r.inPlace, sized)}  ${r.algo}`
  );
}

/** %g-like: six significant digits, no trailing zeros. */
function g(x: number): string {
  return String(Number(x.toPrecision(6)));
}

export function formatFooter(s: Summary): string[] {
  const lines: string[] = [];
  if (s.wrongTotal !== null) lines.push(`# Out of bounds values : ${s.wrongTotal} ${s.wrongTotal === 0 ? 'OK' : 'FAILED'}`);
  lines.push(`# Avg bus bandwidth : ${s.avgBusBw === null ? 'N/A' : g(s.avgBusBw)}`);
  return lines;
}
