// Step time, per-rank memory and wire bytes of DDP, ZeRO-1/2/3 and ZeRO++ on a model large
// enough that communication dominates (synthetic gradients, no compute), 4 ranks as 2 nodes × 2,
// on plain loopback and with only the link between the two nodes shaped. Run it as root, as a
// plain node script:
//
//   node bench/zero.js [--layers 8] [--width 2500] [--steps 3] [--rate 1gbit] [--json FILE]
//
// How two nodes live on one host: one `unshare -n` namespace; node A's ranks (root) listen on
// 127.0.0.2 and node B's (run as uid 65534) on 127.0.0.3. Gloo does not bind its outgoing
// sockets, so the kernel picks their source address from the route: per-uid policy routing
// (`ip rule uidrange`) gives node A's sockets the source 127.0.0.2 and node B's 127.0.0.3.
// An htb qdisc on lo with u32 filters on the source/destination pairs sends A→B and B→A
// traffic through one class per direction; everything else goes through a default class.
// In the shaped run the two cross classes have `rate` (a full-duplex link); in the plain run
// every class is 100 Gbit/s, so the counters are the same and nothing is held back. The
// cross-node bytes in the table are those counters (`tc -s class show`: IP packets, headers
// included), read before and after each strategy's measured steps.
//
// Every strategy runs in the same processes, one after the other (the ratios are side by side);
// each does one warm-up step and `steps` measured ones; a step is timed on rank 0 between
// barriers, and the table gives the median.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync, execFileSync } = require('node:child_process');
const { parseArgs } = require('node:util');

const NODE_ADDR = ['127.0.0.2', '127.0.0.3'];
const NOBODY = 65534;
const STRATEGIES = ['ddp', 'zero1', 'zero2', 'zero3', 'zero++'];

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      layers: { type: 'string', default: '8' },
      width: { type: 'string', default: '2500' },
      steps: { type: 'string', default: '3' },
      rate: { type: 'string', default: '1gbit' },
      json: { type: 'string' },
      out: { type: 'string' },
      only: { type: 'string' },
    },
  });
  const int = (k) => {
    const v = Number(values[k]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${k}: expected a positive integer, got ${JSON.stringify(values[k])}`);
    return v;
  };
  return { layers: int('layers'), width: int('width'), steps: int('steps'), rate: values.rate, json: values.json, out: values.out, only: values.only };
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** Bytes through the two cross-node classes so far (tc's counters). */
function crossCounter() {
  const text = execFileSync('tc', ['-s', 'class', 'show', 'dev', 'lo'], { encoding: 'utf8' });
  let total = 0;
  for (const m of text.matchAll(/class htb 1:(2|3)0 [\s\S]*?Sent (\d+) bytes/g)) total += Number(m[2]);
  return total;
}

// ---------------------------------------------------------------------------------------------
// One rank.

async function rankMain(o) {
  const { init } = require('..');
  const T = require('../dist/training');
  const comm = await init({ hostname: process.env.BENCH_NODE_ADDR });
  const { rank, size } = comm;
  const specs = [];
  for (let i = 0; i < o.layers; i++) specs.push({ name: `layer${i}.weight`, shape: [o.width, o.width] }, { name: `layer${i}.bias`, shape: [o.width] });
  const layers = Array.from({ length: o.layers }, (_, i) => [`layer${i}.weight`, `layer${i}.bias`]);
  const pattern = new Float32Array(o.width * o.width);
  for (let i = 0; i < pattern.length; i++) pattern[i] = Math.sin(i * 0.001 + rank) * 1e-3;
  const grad = (g) => g.set(pattern.subarray(0, g.length));
  const results = [];
  const nodeOf = (r) => Math.floor(r / comm.localSize);

  for (const name of STRATEGIES.filter((s) => o.only === undefined || o.only.split(',').includes(s))) {
    const set = new T.ParameterSet(specs, { padMultiple: T.ParameterSet.padMultiple(size) });
    for (const t of set.tensors) set.view(t.name).fill(0.01);
    let step;
    let memory;
    let comms = [comm];
    let free;
    let peak = 0;
    let zeroGroups = {};
    if (name === 'ddp') {
      const dp = await T.DataParallel.create(comm, set);
      const opt = new T.AdamW(set);
      step = async () => {
        for (let i = set.tensors.length - 1; i >= 0; i--) {
          grad(set.gradView(set.tensors[i].name));
          dp.gradReady(set.tensors[i].name);
        }
        await dp.synchronizeAndStep(opt);
      };
      memory = () => {
        const state = Object.values(opt.state().tensors).reduce((s, t) => s + t.byteLength, 0);
        return { between: set.data.byteLength + set.grad.byteLength + state, optimizerState: state };
      };
      free = () => opt.free();
    } else {
      const stage = name === 'zero1' ? 1 : name === 'zero2' ? 2 : 3;
      const plus = name === 'zero++';
      const zero = await T.Zero.create(comm, set, {
        stage,
        optimizer: (s) => new T.AdamW(s),
        ...(stage === 2 ? { reduceBucketSize: 25 * 2 ** 20 / 4 } : {}),
        ...(stage === 3 ? { layers, prefetchBucketSize: o.width * o.width, ...(plus ? { quantizedWeights: true, hierarchicalPartition: comm.localSize, quantizedGradients: true } : {}) } : {}),
      });
      zeroGroups = zero.groups;
      comms = [comm, zero.groups.intra, zero.groups.inter, zero.groups.hpz].filter((c, i, a) => c !== null && a.indexOf(c) === i);
      const sample = () => {
        const m = zero.memory();
        peak = Math.max(peak, m.master + m.gradientShard + m.optimizerState + m.parameters + m.gathered + m.secondary + m.layerGradients);
      };
      step = async () => {
        if (stage === 3) {
          for (const l of layers) await zero.withGathered(l, sample);
          for (let i = layers.length - 1; i >= 0; i--) {
            await zero.withGathered(layers[i], () => {
              for (const n of [...layers[i]].reverse()) {
                grad(zero.gradView(n));
                zero.gradReady(n);
              }
              sample();
            });
          }
        } else {
          for (let i = set.tensors.length - 1; i >= 0; i--) {
            grad(zero.gradView(set.tensors[i].name));
            zero.gradReady(set.tensors[i].name);
          }
        }
        await zero.step();
      };
      memory = () => {
        const m = zero.memory();
        // Stages 1–2 also keep the full gradient buffer the backward writes into (the full
        // parameters are memory().parameters there).
        const full = stage < 3 ? set.grad.byteLength : 0;
        return { between: full + m.master + m.gradientShard + m.optimizerState + m.parameters, optimizerState: m.optimizerState, peak: stage === 3 ? peak : undefined };
      };
      free = () => zero.free();
    }
    await step();
    await comm.barrier();
    for (const c of comms) c.resetStats();
    const times = [];
    const before = rank === 0 ? crossCounter() : 0;
    for (let s = 0; s < o.steps; s++) {
      await comm.barrier();
      const t0 = performance.now();
      await step();
      await comm.barrier();
      times.push(performance.now() - t0);
    }
    const crossWire = rank === 0 ? (crossCounter() - before) / o.steps : 0;
    let sent = 0;
    for (const c of comms) sent += c.stats().total.bytesSent;
    const ops = {};
    for (const c of comms) for (const [op, st] of Object.entries(c.stats().operations)) {
      const key = `${c === comm ? 'world' : c === zeroGroups.hpz ? 'hpz' : c === zeroGroups.intra ? 'intra' : 'inter'}:${op}`;
      ops[key] = { calls: st.calls / o.steps, msInFlight: Math.round(st.timeMs / o.steps), mib: +(st.bytesSent / o.steps / 2 ** 20).toFixed(1) };
    }
    const mem = memory();
    const mine = { sent: sent / o.steps, between: mem.between, optimizerState: mem.optimizerState, peak: mem.peak ?? mem.between };
    const all = await comm.allGatherObject(mine);
    if (rank === 0) {
      results.push({
        strategy: name,
        stepMs: median(times),
        bytesSentPerRank: all.reduce((s, x) => s + x.sent, 0) / size,
        crossNodeWireBytes: crossWire,
        memoryBetweenSteps: Math.max(...all.map((x) => x.between)),
        memoryPeak: Math.max(...all.map((x) => x.peak)),
        optimizerState: all[0].optimizerState,
        ops,
      });
      console.log(JSON.stringify(ops));
      console.log(`${name}: ${median(times).toFixed(0)} ms/step`);
    }
    await free();
    set.free();
  }
  // The cross-node link itself: 64 MiB from rank 0 (node A) to the first rank of node B.
  const probe = new Float32Array(16 * 2 ** 20);
  const peer = comm.localSize;
  await comm.barrier();
  const t0 = performance.now();
  if (rank === 0) await comm.send(probe, peer);
  else if (rank === peer) await comm.recv(probe, 0);
  await comm.barrier();
  const linkMbit = (probe.byteLength * 8) / ((performance.now() - t0) / 1000) / 1e6;
  if (rank === 0) {
    fs.writeFileSync(o.out, JSON.stringify({ parameters: specs.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0), nodeOf: Array.from({ length: size }, (_, r) => nodeOf(r)), linkMbit, results }, null, 1));
  }
  await comm.destroy();
}

// ---------------------------------------------------------------------------------------------
// The orchestrator: one namespace per link setting, two launchers in it.

function namespaceScript(o, rate, out, argv) {
  const q = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;
  const cli = path.join(__dirname, '..', 'dist', 'launch', 'cli.js');
  const me = path.join(__dirname, 'zero.js');
  const port = 29600 + Math.floor(Math.random() * 1000);
  const launcher = (node) =>
    `${q(process.execPath)} ${q(cli)} --nnodes 2 --node-rank ${node} --nproc-per-node 2 --master-addr ${NODE_ADDR[0]} --master-port ${port} --no-prefix ${q(me)} ${argv.map(q).join(' ')} --out ${q(out)}`;
  return [
    'set -e',
    'ip link set lo up',
    // Source addresses by uid: root's sockets leave from 127.0.0.2, uid 65534's from 127.0.0.3.
    `ip route add local 127.0.0.0/8 dev lo src ${NODE_ADDR[0]} table 100`,
    `ip route add local 127.0.0.0/8 dev lo src ${NODE_ADDR[1]} table 101`,
    'ip rule add uidrange 0-0 lookup 100 pref 10',
    `ip rule add uidrange ${NOBODY}-${NOBODY} lookup 101 pref 11`,
    'ip rule add pref 100 lookup local',
    'ip rule del pref 0',
    'tc qdisc add dev lo root handle 1: htb default 10',
    'tc class add dev lo parent 1: classid 1:10 htb rate 100gbit',
    `tc class add dev lo parent 1: classid 1:20 htb rate ${rate} burst 256kb`,
    `tc class add dev lo parent 1: classid 1:30 htb rate ${rate} burst 256kb`,
    `tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip src ${NODE_ADDR[0]}/32 match ip dst ${NODE_ADDR[1]}/32 flowid 1:20`,
    `tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip src ${NODE_ADDR[1]}/32 match ip dst ${NODE_ADDR[0]}/32 flowid 1:30`,
    `export COLLECTIVES_TOKEN=${q(require('node:crypto').randomBytes(16).toString('hex'))} COLLECTIVES_BENCH_RANK=1 COLLECTIVES_TIMEOUT_MS=600000`,
    `BENCH_NODE_ADDR=${NODE_ADDR[0]} ${launcher(0)} & a=$!`,
    `BENCH_NODE_ADDR=${NODE_ADDR[1]} setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ${launcher(1)} & b=$!`,
    'wait $a; ra=$?; wait $b; rb=$?; exit $((ra | rb))',
  ].join('\n');
}

function fmtBytes(b) {
  return b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`;
}

function table(title, run) {
  const ddp = run.results.find((r) => r.strategy === 'ddp');
  const z3 = run.results.find((r) => r.strategy === 'zero3');
  const lines = [
    `### ${title}`,
    '',
    `${(run.parameters / 1e6).toFixed(1)} M float32 parameters, 4 ranks as 2 nodes × 2; cross-node link measured at ${run.linkMbit.toFixed(0)} Mbit/s (64 MiB, rank 0 → rank 2).`,
    '',
    '| strategy | step (ms) | × DDP | × ZeRO-3 | sent per rank per step | cross-node wire bytes per step | memory per rank between steps | peak in step | optimizer state per rank |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of run.results) {
    lines.push(`| ${r.strategy} | ${r.stepMs.toFixed(0)} | ${ddp ? (r.stepMs / ddp.stepMs).toFixed(2) : '—'} | ${z3 ? (r.stepMs / z3.stepMs).toFixed(2) : '—'} | ${fmtBytes(r.bytesSentPerRank)} | ${fmtBytes(r.crossNodeWireBytes)} | ${fmtBytes(r.memoryBetweenSteps)} | ${fmtBytes(r.memoryPeak)} | ${fmtBytes(r.optimizerState)} |`);
  }
  return lines.join('\n');
}

function main() {
  const argv = process.argv.slice(2);
  const o = parse(argv);
  if (process.env.COLLECTIVES_BENCH_RANK === '1' && process.env.RANK !== undefined) {
    rankMain(o).catch((err) => {
      console.error(err);
      process.exit(1);
    });
    return;
  }
  if (process.getuid && process.getuid() !== 0) throw new Error('bench/zero.js: must run as root (a network namespace, policy routing, a qdisc, a second uid)');
  const passOn = argv.filter((a, i) => !(a === '--json' || argv[i - 1] === '--json'));
  const runs = {};
  for (const [key, rate, title] of [['loopback', '100gbit', 'Plain loopback'], ['shaped', o.rate, `Cross-node link shaped to ${o.rate}`]]) {
    const out = path.join(os.tmpdir(), `zero-bench-${process.pid}-${key}.json`);
    fs.writeFileSync(out, '');
    fs.chmodSync(out, 0o666);
    const r = spawnSync('unshare', ['-n', 'sh', '-c', namespaceScript(o, rate, out, passOn)], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${key} run failed (exit ${r.status})`);
    runs[key] = JSON.parse(fs.readFileSync(out, 'utf8'));
    fs.rmSync(out, { force: true });
    console.log('\n' + table(title, runs[key]) + '\n');
  }
  const shaped = runs.shaped.results;
  const ratio = shaped.find((r) => r.strategy === 'zero++').stepMs / shaped.find((r) => r.strategy === 'zero3').stepMs;
  console.log(`ZeRO++ / ZeRO-3 step time on the shaped link: ${ratio.toFixed(2)} (target ≤ 0.5)`);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ machine: `${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`, ...runs }, null, 1) + '\n');
}

main();
