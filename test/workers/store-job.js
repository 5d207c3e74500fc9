'use strict';
// Ranks of test/16.store-security.test.js; one case per mode.
//
//   job ROUNDS   rendezvous, then ROUNDS splits (each a rendezvous through
//                the store) with an exact all-reduce in each subgroup, while
//                the test fuzzes the store; prints the addresses that listen
//                on MASTER_PORT (from /proc/net/tcp*).
//   intruder     a rank with the wrong token: init() must reject with
//                STORE_REFUSED, promptly.

const fs = require('node:fs');
const { init, CollectiveError } = require('../../dist');
const { Checker, run, settle } = require('../helpers/worker');

/** Local addresses in LISTEN state on `port`, as "a.b.c.d" or "ipv6:HEX". */
function listeners(port) {
  const out = [];
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]]) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue;
      const [hex, p] = f[1].split(':');
      if (parseInt(p, 16) !== port) continue;
      out.push(v6 ? `ipv6:${hex}` : [3, 2, 1, 0].map((i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16)).join('.'));
    }
  }
  return out;
}

async function job() {
  const rounds = Number(process.argv[3]);
  const t0 = Date.now();
  const world = await init();
  const { rank } = world;
  const check = new Checker(rank);
  check.begin('rendezvous rounds');
  for (let i = 0; i < rounds; i++) {
    const sub = await settle(`split ${i}`, world.split(0, (rank + i) % 2));
    const buf = new Int32Array(64).fill(rank + 1);
    await settle(`allReduce ${i}`, sub.allReduce(buf));
    check.ok(`round ${i} is exact`, buf.every((v) => v === 3), `got ${buf[0]}`);
    await settle(`destroy ${i}`, sub.destroy());
  }
  console.log(`rank ${rank}: ${rounds} rendezvous rounds in ${Date.now() - t0} ms; store listens on ${JSON.stringify(listeners(Number(process.env.MASTER_PORT)))}`);
  check.report();
  await settle('destroy', world.destroy());
}

async function intruder() {
  const check = new Checker(Number(process.env.RANK));
  check.begin('a wrong token is refused');
  const t0 = Date.now();
  let err;
  try {
    await init();
  } catch (e) {
    err = e;
  }
  const ms = Date.now() - t0;
  check.ok('init with a wrong token rejects with STORE_REFUSED', err instanceof CollectiveError && err.code === 'STORE_REFUSED', `${err && err.code}: ${err && err.message}`);
  check.ok('the refusal comes at once', ms < 5000, `after ${ms} ms`);
  check.report();
}

run(process.argv[2] === 'intruder' ? intruder : job);
