'use strict';
// collectives-bench: nccl-tests' arithmetic, the size list, the flags, the check, and short
// real runs of every operation through `--np`.

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { FOREIGN } = require('./helpers/launch');
const elements = require('./helpers/elements');

const DIST = path.join(__dirname, '..', 'dist', 'bench');
const CLI = path.join(DIST, 'cli.js');
const { findOp, opNames } = require(path.join(DIST, 'registry.js'));
const { bandwidths, combineAcrossRanks } = require(path.join(DIST, 'measure.js'));
const { algorithmOf } = require(path.join(DIST, 'sweep.js'));
const { DEFAULTS, parseSize, sizeList, validateOptions, withoutNp } = require(path.join(DIST, 'options.js'));
const check = require(path.join(DIST, 'check.js'));
const { formatRow, formatFooter } = require(path.join(DIST, 'table.js'));
const { commandLine, summarize } = require(path.join(DIST, 'report.js'));
const plot = require(path.join(DIST, 'plot.js'));

function bench(args, { killAfterMs = 30000 } = {}) {
  const env = { ...process.env, COLLECTIVES_TIMEOUT_MS: '15000' };
  for (const k of FOREIGN) if (k !== 'COLLECTIVES_TIMEOUT_MS') delete env[k];
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGTERM'), killAfterMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The table's data lines, split into columns. */
function tableRows(stdout) {
  return stdout
    .split('\n')
    .filter((l) => /^\s+\d/.test(l))
    .map((l) => l.trim().split(/\s+/));
}

const close = (got, want) => assert.ok(Math.abs(got - want) < 1e-12, `${got} is not ${want}`);

describe('65 collectives-bench', function () {
  this.timeout(30000);

  before(function () {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build it with npx tsc -p .`);
  });

  describe("nccl-tests' arithmetic", function () {
    it('algbw is bytes / time in GB/s (1e9); busbw applies each op\'s factor', function () {
      // 1e9 bytes in 0.5 s on 4 ranks: algbw 2 GB/s.
      const want = { all_reduce: 3, reduce_scatter: 1.5, all_gather: 1.5, alltoall: 1.5, broadcast: 2, reduce: 2 };
      for (const [name, busbw] of Object.entries(want)) {
        const bw = bandwidths(1e9, 0.5, findOp(name).busBwFactor(4));
        close(bw.algbw, 2);
        close(bw.busbw, busbw);
      }
      // 2 ranks: 2(n-1)/n = 1 and (n-1)/n = 0.5. 8 MiB in 4 ms: 2.097152 GB/s.
      close(bandwidths(8 << 20, 0.004, findOp('all_reduce').busBwFactor(2)).busbw, 2.097152);
      close(bandwidths(8 << 20, 0.004, findOp('all_gather').busBwFactor(2)).busbw, 1.048576);
      close(bandwidths(3e6, 1e-3, findOp('all_reduce').busBwFactor(3)).busbw, 4);
      assert.equal(findOp('barrier').busBwFactor(4), 0);
    });

    it('sizes and counts: all-reduce count × type size; reduce-scatter / all-gather the whole array; all-to-all per rank', function () {
      // 1000 B of float32 on 3 ranks.
      assert.deepEqual(pick(findOp('all_reduce').layout(1000, 4, 3)), { count: 250, bytes: 1000 });
      assert.deepEqual(pick(findOp('broadcast').layout(1001, 4, 3)), { count: 250, bytes: 1000 });
      assert.deepEqual(pick(findOp('reduce').layout(1000, 2, 3)), { count: 500, bytes: 1000 });
      // 83 elements per rank: 83 × 4 × 3 = 996 B; the count column is per rank.
      assert.deepEqual(pick(findOp('reduce_scatter').layout(1000, 4, 3)), { count: 83, bytes: 996 });
      assert.deepEqual(pick(findOp('all_gather').layout(1000, 4, 3)), { count: 83, bytes: 996 });
      // all-to-all: the count column is the whole array of one rank.
      assert.deepEqual(pick(findOp('alltoall').layout(1000, 4, 3)), { count: 249, bytes: 996 });
      const rs = findOp('reduce_scatter').layout(1000, 4, 3);
      assert.deepEqual([rs.inLength, rs.outLength], [249, 83]);
      const ag = findOp('all_gather').layout(1000, 4, 3);
      assert.deepEqual([ag.inLength, ag.outLength], [83, 249]);
    });

    it('the average bus bandwidth is the mean of every busbw printed, out-of-place and in-place', function () {
      const cell = (busbw) => ({ timeUs: 1, algbw: busbw, busbw, wrong: 0 });
      const rows = [
        { bytes: 8, outOfPlace: cell(1), inPlace: cell(2) },
        { bytes: 16, outOfPlace: null, inPlace: cell(6) },
      ];
      assert.deepEqual(summarize(rows), { avgBusBw: 3, wrongTotal: 0 });
      assert.deepEqual(formatFooter(summarize(rows)), ['# Out of bounds values : 0 OK', '# Avg bus bandwidth : 3']);
    });

    it('-a combines the ranks\' times: rank 0\'s, the average, the minimum or the maximum', async function () {
      // Rank 1 of 2 holds [4, 8]; the fake peer (rank 0) holds [2, 16].
      const peer = [2, 16];
      const fake = {
        rank: 1,
        size: 2,
        async allReduce(buf, { op }) {
          for (let i = 0; i < buf.length; i++) {
            const p = peer[i];
            buf[i] = op === 'min' ? Math.min(buf[i], p) : op === 'max' ? Math.max(buf[i], p) : buf[i] + p;
          }
          return buf;
        },
      };
      assert.deepEqual(await combineAcrossRanks(fake, [4, 8], 'rank0'), [2, 16]);
      assert.deepEqual(await combineAcrossRanks(fake, [4, 8], 'avg'), [3, 12]);
      assert.deepEqual(await combineAcrossRanks(fake, [4, 8], 'min'), [2, 8]);
      assert.deepEqual(await combineAcrossRanks(fake, [4, 8], 'max'), [4, 16]);
    });

    it('asks Communicator.algorithm(op, bytes) for the algo column', function () {
      const comm = { prefix: 'ring', algorithm(op, bytes) { return `${this.prefix}:${op}:${bytes}`; } };
      assert.equal(algorithmOf(comm)('all_reduce', 4096), 'ring:all_reduce:4096');
    });

    it('prints N/A for a placement the API cannot express', function () {
      const line = formatRow({
        op: 'broadcast', bytes: 1024, count: 256, dtype: 'float32', redop: 'none', root: 0, algo: 'default',
        outOfPlace: null, inPlace: { timeUs: 12.345, algbw: 0.08, busbw: 0.08, wrong: 0 },
      });
      assert.deepEqual(line.trim().split(/\s+/), ['1024', '256', 'float32', 'none', '0', 'N/A', 'N/A', 'N/A', 'N/A', '12.35', '0.08', '0.08', '0', 'default']);
    });

    function pick(l) {
      return { count: l.count, bytes: l.bytes };
    }
  });

  describe('the recorded command and the plot', function () {
    it('quotes the arguments a shell would split or expand', function () {
      assert.equal(commandLine(['all_reduce', '--np', '2', '-b', '8', '--json', '/tmp/a.json']), 'collectives-bench all_reduce --np 2 -b 8 --json /tmp/a.json');
      assert.equal(commandLine(['--plot', 'my plot.svg', "it's", '']), "collectives-bench --plot 'my plot.svg' 'it'\\''s' ''");
    });

    /** Rows as a sweep makes them: both placements, sizes from 8 B by a factor. */
    function rows(factor, max = 64 << 20) {
      const out = [];
      for (let b = 8; b <= max; b *= factor) {
        const cell = { timeUs: 50 + b / 1000, algbw: 1, busbw: 1, wrong: 0 };
        out.push({ op: 'all_reduce', bytes: b, count: b / 4, dtype: 'float32', redop: 'sum', root: -1, algo: 'sync ring', outOfPlace: cell, inPlace: cell });
      }
      return out;
    }
    const header = { op: 'all_reduce', worldSize: 2, backend: 'gloo', host: 'h', cpus: 2, node: 'v20', gloo: '0.5.0' };

    it('tells in-place from out-of-place by shape and dash, in the chart and in the legend', async function () {
      const spec = plot.plotSpec(rows(4), header);
      for (const panel of spec.vconcat) {
        const points = panel.layer.find((l) => l.mark.type === 'point');
        const line = panel.layer.find((l) => l.mark.type === 'line');
        assert.equal(points.encoding.shape.field, 'placement');
        assert.deepEqual(points.encoding.shape.scale, { domain: ['out-of-place', 'in-place'], range: ['circle', 'square'] });
        assert.equal(line.encoding.strokeDash.field, 'placement');
        const [solid, dashed] = line.encoding.strokeDash.scale.range;
        assert.notDeepEqual(solid, dashed);
      }
      // The drawn legend: two different symbols under "placement", dark enough to see.
      const svg = await plot.renderSvg(spec);
      const symbols = [...svg.matchAll(/role-legend-symbol"[^>]*><path [^>]*d="([^"]+)"[^>]*stroke="#333"[^>]*stroke-dasharray="([^"]+)"[^>]*>[\s\S]*?<text[^>]*>(out-of-place|in-place)</g)];
      assert.deepEqual(symbols.map((m) => m[3]), ['out-of-place', 'in-place'], 'the legend lacks dark placement symbols');
      assert.notEqual(symbols[0][1], symbols[1][1], 'out-of-place and in-place have the same legend shape');
      assert.notEqual(symbols[0][2], symbols[1][2], 'out-of-place and in-place have the same legend dash');
    });

    it('labels every size as the flags write it (8, 2K, 32M), or every other one past 14 sizes', async function () {
      const spec = plot.plotSpec(rows(4), header);
      const want = [8, 32, 128, 512, 2048, 8192, 32768, 131072, 524288, 2097152, 8388608, 33554432];
      assert.deepEqual(spec.vconcat[0].encoding.x.axis.values, want);
      const svg = await plot.renderSvg(spec);
      const labels = [...svg.matchAll(/role-axis-label"[\s\S]*?<\/g>/g)].map((g) => [...g[0].matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]));
      const sizeLabels = ['8', '32', '128', '512', '2K', '8K', '32K', '128K', '512K', '2M', '8M', '32M'];
      assert.ok(labels.some((l) => JSON.stringify(l) === JSON.stringify(sizeLabels)), `no axis labelled ${sizeLabels.join(' ')}: ${JSON.stringify(labels)}`);
      // 24 sizes (-f 2): every second one, the largest labelled.
      const ticks = plot.plotSpec(rows(2), header).vconcat[1].encoding.x.axis.values;
      assert.equal(ticks.length, 12);
      assert.equal(ticks[ticks.length - 1], 64 << 20);
      assert.equal(ticks[1] / ticks[0], 4);
    });
  });

  describe('sizes and flags', function () {
    const raw = (over) => ({ ...DEFAULTS, ...over });

    it('reads K, M and G as powers of 1024, as nccl-tests does', function () {
      assert.equal(parseSize('-b', '8'), 8);
      assert.equal(parseSize('-b', '4K'), 4096);
      assert.equal(parseSize('-e', '64M'), 64 << 20);
      assert.equal(parseSize('-e', '1g'), 1 << 30);
      assert.throws(() => parseSize('-e', '1.5M'), /-e: expected a size in bytes.*got "1\.5M"/);
    });

    it('walks -b to -e times -f, or plus -i when -f is 1', function () {
      assert.deepEqual(sizeList(validateOptions('all_reduce', raw({ minbytes: '8', maxbytes: '4K', stepfactor: '8' }))), [8, 64, 512, 4096]);
      assert.deepEqual(sizeList(validateOptions('all_reduce', raw({ minbytes: '8', maxbytes: '64M', stepfactor: '4' }))).length, 12);
      assert.deepEqual(
        sizeList(validateOptions('all_reduce', raw({ minbytes: '1K', maxbytes: '4K', stepbytes: '1K' }))),
        [1024, 2048, 3072, 4096],
      );
      assert.deepEqual(sizeList(validateOptions('all_reduce', raw({ minbytes: '100', maxbytes: '250', stepbytes: '100' }))), [100, 200]);
      // nccl-tests' defaults: 32M only.
      assert.deepEqual(sizeList(validateOptions('all_reduce', raw({}))), [32 << 20]);
    });

    it('takes nccl-tests\' names and "all" for -d and -o', function () {
      const o = validateOptions('all_reduce', raw({ datatype: 'half', op: 'all' }));
      assert.deepEqual(o.dtypes, ['float16']);
      assert.deepEqual(o.redops, ['sum', 'prod', 'min', 'max', 'avg']);
      assert.equal(validateOptions('all_reduce', raw({ datatype: 'all' })).dtypes.length, 8);
      assert.deepEqual(validateOptions('all_gather', raw({ op: 'max' })).redops, ['none']);
      assert.equal(validateOptions('all_reduce', raw({ average: '2' })).combine, 'min');
    });

    it('names the flag, what was expected and what came', function () {
      const bad = [
        [{ iters: '0' }, /-n: expected a positive integer.*got "0"/],
        [{ warmupIters: '-1' }, /-w: expected a non-negative integer.*got "-1"/],
        [{ check: '2' }, /-c: expected 0 or 1, got "2"/],
        [{ datatype: 'float8' }, /-d: expected one of float32.*got "float8"/],
        [{ op: 'xor' }, /-o: expected one of sum, prod, min, max, avg or all, got "xor"/],
        [{ average: '4' }, /-a: expected 0 \(rank 0\).*got "4"/],
        [{ minbytes: '64', maxbytes: '8' }, /-e: expected at least -b \(64 bytes\), got "8"/],
        [{ np: '2', root: '2' }, /-r: expected a rank from 0 to 1 \(--np is 2\), got "2"/],
        [{ np: '0' }, /--np: expected a positive number of ranks, got "0"/],
        [{ backend: 'mpi' }, /--backend: expected gloo or nccl, got "mpi"/],
      ];
      for (const [over, message] of bad) {
        assert.throws(() => validateOptions('all_reduce', raw(over)), (err) => err.code === 'USAGE' && message.test(err.message));
      }
      assert.throws(() => validateOptions('allreduce', raw({})), /<op>: expected one of all_reduce, .*barrier, .*alltoall_quantized, got "allreduce"/);
      assert.deepEqual(opNames().sort(), [
        'all_gather', 'all_gather_quantized', 'all_reduce', 'all_reduce_quantized', 'alltoall', 'alltoall_quantized',
        'barrier', 'broadcast', 'reduce', 'reduce_scatter', 'reduce_scatter_quantized',
      ]);
      const quantBad = [
        [{ quant: 'int3' }, /-q: expected one of int8, int4, fp8e4m3, fp8e5m2, got "int3"/],
        [{ blockSize: '12' }, /--block-size: expected a multiple of 8.*got "12"/],
        [{ datatype: 'int32' }, /-d: expected a dtype all_reduce_quantized takes \(float32, float16, bfloat16\), got "int32"/],
        [{ op: 'max' }, /-o: expected a reduction all_reduce_quantized supports \(sum, avg\), got "max"/],
      ];
      for (const [over, message] of quantBad) {
        assert.throws(() => validateOptions('all_reduce_quantized', raw(over)), (err) => err.code === 'USAGE' && message.test(err.message));
      }
    });

    it('gives each started rank the arguments without --np', function () {
      assert.deepEqual(withoutNp(['all_reduce', '--np', '2', '-b', '8', '--np=3', '-c', '1']), ['all_reduce', '-b', '8', '-c', '1']);
    });

    it('exits with 2 and a clear message on a bad flag, before starting any rank', async function () {
      const res = await bench(['all_reduce', '--np', '2', '-e', '4Q']);
      assert.equal(res.code, 2);
      assert.match(res.stderr, /^collectives-bench: -e: expected a size in bytes.*got "4Q"/);
      assert.equal(res.stdout, '');
      const unknown = await bench(['all_reduce', '--frobnicate']);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown option '--frobnicate'/);
      const unwritable = await bench(['all_reduce', '--np', '2', '--json', path.join(os.tmpdir(), 'no-such-folder-here', 'x.json')]);
      assert.equal(unwritable.code, 2);
      assert.match(unwritable.stderr, /--json: expected a file in a writable folder, got ".*x\.json"/);
    });
  });

  describe('the quantized operations\' check', function () {
    const args = (format) => ({ dtype: 'float32', redop: 'sum', root: 0, quant: { format, blockSize: 256 } });

    it('accepts the error the format allows and counts an element beyond it', function () {
      const op = findOp('all_reduce_quantized');
      const expected = Float32Array.from({ length: 64 }, (_, i) => i * 2); // largest 126
      // int8 on 2 ranks: three quantizations of at most one step (126 + 1) / 127 each.
      const near = expected.map((v, i) => v + (i % 2 ? 2.9 : -2.9));
      assert.equal(op.compare(near, expected, 'float32', 2, args('int8')), 0);
      near[5] = expected[5] + 3.1;
      near[9] = NaN;
      assert.equal(op.compare(near, expected, 'float32', 2, args('int8')), 2);
      // The same 3.1 is well inside int4's step.
      assert.equal(op.compare(Float32Array.from(expected, (v) => v + 3.1), expected, 'float32', 2, args('int4')), 0);
    });

    it('reads half types as values, not bits', function () {
      const op = findOp('all_gather_quantized');
      const expected = Uint16Array.from([1, 2, 100, 1000], elements.float16Bits);
      assert.equal(op.compare(expected.slice(), expected, 'float16', 2, args('int8')), 0);
      const off = expected.slice();
      off[2] = elements.float16Bits(120); // 20 away; one int8 step of 1000 is about 7.9
      assert.equal(op.compare(off, expected, 'float16', 2, args('int8')), 1);
    });
  });

  describe('check', function () {
    const op = findOp('all_reduce');
    const layout = op.layout(64 * 4, 4, 3);

    /** An all-reduce's right output on 3 ranks, computed here from the inputs. */
    function rightSum(dtype, encode) {
      const values = check.inputValues('sum', dtype, 3);
      const out = [];
      for (let i = 0; i < layout.count; i++) out.push(encode(values(0, i) + values(1, i) + values(2, i)));
      return out;
    }

    it('counts 0 for a right buffer and 1 for one planted wrong element', function () {
      const expected = check.expectedResult(op, layout, layout.count, 'float32', 'sum', 3, 0, 0);
      const right = Float32Array.from(rightSum('float32', (v) => v));
      assert.equal(check.countWrong(right, expected), 0);
      right[17] += 1;
      assert.equal(check.countWrong(right, expected), 1);
      right[40] = NaN;
      assert.equal(check.countWrong(right, expected), 2);
    });

    it('compares half types bit for bit', function () {
      for (const [dtype, bits] of [
        ['float16', elements.float16Bits],
        ['bfloat16', elements.bfloat16Bits],
      ]) {
        const expected = check.expectedResult(op, layout, layout.count, dtype, 'sum', 3, 1, 0);
        const right = Uint16Array.from(rightSum(dtype, bits));
        assert.equal(check.countWrong(right, expected), 0, dtype);
        right[3] ^= 1; // one ulp
        assert.equal(check.countWrong(right, expected), 1, dtype);
      }
    });

    it('finds an element of an all-to-all taken from the wrong rank', function () {
      const a2a = findOp('alltoall');
      const l = a2a.layout(16, 4, 2); // 4 int32 per rank: blocks of 2
      const values = check.inputValues('none', 'int32', 2);
      // Rank 1's output: block 0 from rank 0's block 1, block 1 from its own block 1.
      const right = Int32Array.of(values(0, 2), values(0, 3), values(1, 2), values(1, 3));
      const expected = check.expectedResult(a2a, l, 4, 'int32', 'none', 2, 1, 0);
      assert.equal(check.countWrong(right, expected), 0);
      right[1] = values(1, 3);
      assert.equal(check.countWrong(right, expected), 1);
    });

    it('chooses inputs whose sums, products and averages are exact in every dtype', function () {
      for (const n of [2, 3, 5, 8, 16, 64]) {
        for (const dtype of ['float16', 'bfloat16', 'int8', 'uint8']) {
          const limit = check.EXACT_LIMIT[dtype];
          const sum = check.inputValues('sum', dtype, n);
          for (let i = 0; i < 200; i++) {
            let s = 0;
            for (let r = 0; r < n; r++) s += sum(r, i);
            assert.ok(s <= limit, `${dtype} sum over ${n} ranks reaches ${s}`);
          }
        }
        for (const dtype of ['float16', 'bfloat16']) {
          const avg = check.inputValues('avg', dtype, n);
          for (let i = 0; i < 200; i++) {
            let s = 0;
            let abs = 0;
            for (let r = 0; r < n; r++) {
              s += avg(r, i);
              abs += Math.abs(avg(r, i));
            }
            assert.equal(s % n, 0, `${dtype} avg over ${n} ranks is not exact at ${i}`);
            assert.ok(abs <= check.EXACT_LIMIT[dtype]);
          }
        }
      }
      // Integer products wrap as in two's complement: 2^8 is 0 in int8.
      assert.equal(check.reduceExact('prod', 'int8', Array(8).fill(2)), 0n);
      assert.equal(check.reduceExact('prod', 'int8', Array(7).fill(2)), -128n);
      assert.equal(check.encodeValue('float16', 2 ** 16), 0x7c00);
      for (let v = -256; v <= 256; v++) assert.equal(check.bfloat16Bits(v), elements.bfloat16Bits(v === 0 ? 0 : v));
      for (let v = -2048; v <= 2048; v += 7) assert.equal(check.float16Bits(v), elements.float16Bits(v === 0 ? 0 : v));
    });
  });

  describe('real runs (2 ranks through --np)', function () {
    let dir;
    before(function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-bench-'));
    });
    after(function () {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('all_reduce: a row per size with #wrong 0, the JSON and the SVG', async function () {
      const json = path.join(dir, 'tmp.json');
      const svg = path.join(dir, 'tmp.svg');
      const args = ['all_reduce', '--np', '2', '-b', '8', '-e', '4K', '-f', '8', '-c', '1', '-n', '3', '-w', '1', '--json', json, '--plot', svg];
      const res = await bench(args);
      assert.equal(res.code, 0, res.stderr);
      // The recorded command is the one typed, --np included: run again, it starts 2 ranks again.
      const command = ['collectives-bench', ...args].join(' ');
      assert.equal(res.stdout.split('\n')[0], `# ${command}`);
      const rows = tableRows(res.stdout);
      assert.deepEqual(rows.map((r) => r[0]), ['8', '64', '512', '4096']);
      assert.deepEqual(rows.map((r) => r[1]), ['2', '16', '128', '1024']);
      for (const r of rows) {
        assert.deepEqual([r[2], r[3], r[4]], ['float32', 'sum', '-1']);
        assert.equal(r[8], '0', `out-of-place #wrong in ${r.join(' ')}`);
        assert.equal(r[12], '0', `in-place #wrong in ${r.join(' ')}`);
        // The algo column is last and may hold spaces ("sync ring").
        assert.ok(r.length >= 14, r.join(' '));
        assert.match(r.slice(13).join(' '), /^sync (ring|halving-doubling)/);
      }
      assert.match(res.stdout, /^# collectives .*backend gloo, world size 2, .*Gloo /m);
      assert.match(res.stdout, /^# Out of bounds values : 0 OK$/m);
      assert.match(res.stdout, /^# Avg bus bandwidth : [0-9.e+-]+$/m);
      const report = JSON.parse(fs.readFileSync(json, 'utf8'));
      assert.equal(report.header.worldSize, 2);
      assert.equal(report.header.command, command);
      assert.equal(report.header.startedBy, 'np');
      assert.equal(report.header.backend, 'gloo');
      assert.equal(typeof report.header.gloo, 'string');
      assert.equal(report.rows.length, 4);
      assert.equal(report.rows[3].bytes, 4096);
      assert.equal(report.rows[3].inPlace.wrong, 0);
      assert.equal(typeof report.rows[0].algo, 'string');
      assert.equal(report.wrongTotal, 0);
      assert.match(fs.readFileSync(svg, 'utf8'), /^<svg/);
    });

    const others = [
      ['reduce_scatter', ['-o', 'max', '-d', 'bfloat16'], ['0', '0']],
      ['all_gather', ['-d', 'int64'], ['0', '0']],
      ['alltoall', ['-d', 'int8', '-z', '1'], ['0', '0']],
      ['broadcast', ['-r', '1', '-d', 'float16', '-a', '3'], ['N/A', '0']],
      ['reduce', ['-r', '1', '-o', 'avg', '-d', 'float64'], ['0', '0']],
      ['all_reduce_quantized', ['-q', 'int4', '-d', 'bfloat16'], ['0', '0']],
      ['reduce_scatter_quantized', ['-o', 'avg'], ['0', 'N/A']],
      ['all_gather_quantized', ['-q', 'fp8e4m3', '-d', 'float16'], ['0', 'N/A']],
      ['alltoall_quantized', ['-q', 'fp8e5m2'], ['0', 'N/A']],
    ];
    for (const [op, extra, wrong] of others) {
      it(`${op} ${extra.join(' ')}: #wrong ${wrong.join(' / ')}`, async function () {
        const res = await bench([op, '--np', '2', '-b', '1K', '-e', '1K', '-c', '1', '-n', '2', '-w', '1', ...extra]);
        assert.equal(res.code, 0, res.stderr);
        const rows = tableRows(res.stdout);
        assert.equal(rows.length, 1, res.stdout);
        assert.equal(rows[0][0], '1024');
        assert.deepEqual([rows[0][8], rows[0][12]], wrong, rows[0].join(' '));
      });
    }

    it('barrier: one row of time only', async function () {
      const res = await bench(['barrier', '--np', '2', '-n', '2', '-w', '1']);
      assert.equal(res.code, 0, res.stderr);
      const rows = tableRows(res.stdout);
      assert.equal(rows.length, 1);
      assert.deepEqual(rows[0].slice(0, 5), ['0', '0', 'none', 'none', '-1']);
      assert.match(rows[0][5], /^[0-9.]+$/);
      assert.match(res.stdout, /^# Avg bus bandwidth : N\/A$/m);
    });
  });
});
