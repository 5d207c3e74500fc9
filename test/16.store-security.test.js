'use strict';
// The store is closed to strangers: while 2 ranks rendezvous through it again
// and again, seeded fuzz connections send random bytes, random frames,
// wrong tokens, oversized and truncated frames and idle half-messages to its
// port. None may get in, store anything, crash or stall the job. A rank with
// the wrong token is refused; the launcher's and init()'s stores listen only
// on the address they were given. COLLECTIVES_FULL=1 fuzzes 10× longer.
// Next to 15.store: the store's protocol first, then who may speak it.

const assert = require('node:assert/strict');
const net = require('node:net');
const { randomBytes } = require('node:crypto');
const { StoreServer } = require('../dist/store/server.js');
const { launchWorker, assertSucceeded, spawnRanks, describeRanks } = require('./helpers/launch');
const { assertCases, parseCases, launched } = require('./helpers/cases');
const { StoreClient, Status, encode, frame, u32, blob } = require('./helpers/store-client');

const FULL = process.env.COLLECTIVES_FULL === '1';
const FUZZ_CONNECTIONS = FULL ? 5000 : 500;
const ROUNDS = FULL ? 1000 : 100;
const SEED = Number(process.env.COLLECTIVES_SEED ?? 0x5eed);

function rng(seed) {
  let s = (seed % 2147483646) + 1;
  return () => (s = (s * 48271) % 2147483647) / 2147483647;
}

/** The cases of test/workers/store-job.js of each rank in `results` (spawnRanks'), by rank. */
function casesOf(results) {
  return new Map(results.map((r) => [r.rank, parseCases(r.stdout, r.rank).get(r.rank) ?? []]));
}

/** Sends `bytes` on a fresh connection; resolves with the replies' statuses once the server closes it (or after `idleMs`). */
function probe(port, bytes, idleMs) {
  return new Promise((resolve) => {
    const statuses = [];
    let pending = Buffer.alloc(0);
    const socket = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => socket.destroy(), idleMs);
    socket.on('error', () => {});
    // The server half-closes after its last reply.
    socket.on('end', () => socket.destroy());
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 4 + pending.readUInt32LE(0)) {
        statuses.push(pending.readUInt8(4));
        pending = pending.subarray(4 + pending.readUInt32LE(0));
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(statuses);
    });
    socket.on('connect', () => socket.write(bytes));
  });
}

describe('16 store security', function () {
  it(`refuses ${FUZZ_CONNECTIONS} fuzzed strangers while 2 ranks rendezvous ${ROUNDS} times through the same store`, async function () {
    this.timeout(FULL ? 300000 : 60000);
    const token = randomBytes(16).toString('hex');
    const server = await StoreServer.start({ host: '127.0.0.1', port: 0, token });
    const random = rng(SEED);
    const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
    const bytes = (n) => Buffer.from(Array.from({ length: n }, () => int(0, 255)));
    const wrongTokens = () => [
      token.slice(0, -1), token + 'x', '', token.toUpperCase(), bytes(32).toString('hex'),
      token.slice(0, 8) + String.fromCharCode(token.charCodeAt(8) ^ 1) + token.slice(9),
    ];
    const strangers = [
      ['random bytes', () => bytes(int(1, 2048))],
      ['random frame', () => frame(bytes(int(0, 512)))],
      ['wrong token', () => encode.hello(wrongTokens()[int(0, 5)])],
      ['wrong version', () => encode.hello(token, int(2, 1 << 30))],
      ['request before HELLO', () => [encode.set('stranger', 'x'), encode.get('job/world/0', 10), encode.add('n', 1)][int(0, 2)]],
      ['oversized frame', () => Buffer.concat([u32(int(64 * 1024, 0xffffffff)), bytes(int(0, 64))])],
      ['truncated HELLO', () => encode.hello(token).subarray(0, int(1, 12))],
      ['HELLO with a lying length', () => frame(Buffer.concat([Buffer.from([1]), u32(1), u32(int(100, 1 << 30)), Buffer.from(token)]))],
    ];
    // Authenticated but malformed: must be answered with ERROR and cut off.
    const malformed = [
      ['unknown opcode', () => frame(Buffer.from([int(6, 255)]))],
      ['SET with trailing bytes', () => frame(Buffer.concat([Buffer.from([2]), blob('fuzz/k'), blob('v'), bytes(int(1, 8))]))],
      ['GET cut short', () => frame(Buffer.concat([Buffer.from([3]), u32(int(10, 1000)), Buffer.from('fuzz')]))],
      ['WAIT with a huge count', () => frame(Buffer.concat([Buffer.from([4]), u32(int(1e6, 0xffffffff)), u32(0)]))],
      ['oversized frame', () => Buffer.concat([u32(16 * 1024 * 1024 + int(1, 1000)), bytes(16)])],
    ];

    const jobStart = Date.now();
    let jobMs = 0;
    const job = spawnRanks('store-job.js', { nproc: 2, args: ['job', String(ROUNDS)], store: { server, token }, killAfterMs: FULL ? 280000 : 50000 }).then((r) => {
      jobMs = Date.now() - jobStart;
      return r;
    });
    const counts = new Map();
    const bad = [];
    const fuzz = (async () => {
      for (let i = 0; i < FUZZ_CONNECTIONS; i += 10) {
        const batch = [];
        for (let j = 0; j < 10; j++) {
          const authed = random() < 0.25;
          const [name, make] = (authed ? malformed : strangers)[int(0, (authed ? malformed : strangers).length - 1)];
          const payload = make();
          const label = `${authed ? 'authenticated ' : ''}${name}`;
          counts.set(label, (counts.get(label) ?? 0) + 1);
          const sent = authed ? Buffer.concat([encode.hello(token), payload]) : payload;
          batch.push(
            probe(server.port, sent, 100).then((statuses) => {
              const replies = authed ? statuses.slice(1) : statuses;
              // A stranger gets REFUSED or ERROR, or nothing yet (a frame still incomplete); never OK or VALUE.
              const ok = replies.every((s) => s === Status.REFUSED || s === Status.ERROR);
              if (!ok) bad.push(`${label}: replies ${statuses} to ${payload.subarray(0, 32).toString('hex')}`);
            }),
          );
        }
        await Promise.all(batch);
      }
    })();
    const [results] = await Promise.all([job, fuzz]);
    try {
      const context = `COLLECTIVES_SEED=${SEED}\n${describeRanks(results)}`;
      assert.deepEqual(bad, [], `strangers got through\n${bad.slice(0, 10).join('\n')}`);
      assertCases(casesOf(results), [0, 1], ['rendezvous rounds'], context);
      for (const r of results) assert.equal(r.code, 0, context);
      // Only the job and authenticated fuzzers (keys fuzz/…) ever stored anything.
      const strays = [...server.values.keys()].filter((k) => !k.startsWith('test-') && !k.startsWith('fuzz/'));
      assert.deepEqual(strays, [], 'keys stored by strangers');
      // The store still answers a good client at once.
      const c = await StoreClient.authed(server.port, token);
      const t0 = Date.now();
      assert.deepEqual(await c.request(encode.set('after', 'fuzz')), { status: Status.OK });
      assert.equal((await c.request(encode.get('after', 100))).status, Status.VALUE);
      assert.ok(Date.now() - t0 < 500, `the store took ${Date.now() - t0} ms to answer after the fuzz`);
      await c.close();
      console.log(`      ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}`);
      console.log(`      job: ${ROUNDS} rendezvous rounds under fuzz: ${results.map((r) => /in (\d+ ms)/.exec(r.stdout)?.[1]).join(", ")} (processes ${jobMs} ms)`);
    } finally {
      await server.close();
    }
  });

  it('refuses a rank that presents the wrong token', async function () {
    this.timeout(20000);
    const server = await StoreServer.start({ host: '127.0.0.1', port: 0, token: randomBytes(16).toString('hex') });
    try {
      const [r] = await spawnRanks('store-job.js', { nproc: 1, args: ['intruder'], store: { server, token: 'not-the-token' }, env: { WORLD_SIZE: '2' }, killAfterMs: 15000 });
      assertCases(casesOf([r]), [0], ['a wrong token is refused'], describeRanks([r]));
      assert.equal(r.code, 0, describeRanks([r]));
      assert.equal(server.values.size, 0, 'the intruder stored nothing');
    } finally {
      await server.close();
    }
  });

  it("the launcher's store listens only on the master address", async function () {
    this.timeout(30000);
    const res = await launchWorker('store-job.js', { nproc: 2, args: ['job', '1'], killAfterMs: 20000 });
    assertCases(res.stdout, [0, 1], ['rendezvous rounds'], launched(res));
    assertSucceeded(res, 'store-job under the launcher');
    const m = /store listens on (\[.*\])/.exec(res.stdout);
    assert.ok(m, res.stdout);
    assert.deepEqual(JSON.parse(m[1]), ['127.0.0.1'], res.stdout);
  });

  it("init()'s store on rank 0 listens only on MASTER_ADDR", async function () {
    this.timeout(30000);
    const port = await new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    // The lent store only makes spawnRanks' environment; rank 0 hosts its own.
    const lent = await StoreServer.start({ host: '127.0.0.1', port: 0, token: 'unused' });
    try {
      const results = await spawnRanks('store-job.js', {
        nproc: 2,
        args: ['job', '1'],
        store: { server: lent, token: 'job-token' },
        env: { MASTER_PORT: String(port), COLLECTIVES_STORE_HOSTED: '0' },
        killAfterMs: 20000,
      });
      const context = describeRanks(results);
      assertCases(casesOf(results), [0, 1], ['rendezvous rounds'], context);
      for (const r of results) assert.equal(r.code, 0, context);
      const m = /rank 0: .*store listens on (\[.*\])/.exec(results[0].stdout);
      assert.ok(m, context);
      assert.deepEqual(JSON.parse(m[1]), ['127.0.0.1'], context);
    } finally {
      await lent.close();
    }
  });
});
