'use strict';

const assert = require('node:assert/strict');
const { StoreServer } = require('../dist/store/server.js');
const { StoreClient, Status, encode, frame, u32, blob } = require('./helpers/store-client');

const TOKEN = 'job-secret-token';

describe('store server', function () {
  this.timeout(10000);
  let server;

  beforeEach(async function () {
    server = await StoreServer.start({ host: '127.0.0.1', port: 0, token: TOKEN });
  });

  afterEach(async function () {
    await server.close();
  });

  it('binds only to the host it is given', function () {
    const addr = server.address();
    assert.equal(addr.address, '127.0.0.1');
    assert.equal(addr.family, 'IPv4');
    assert.equal(server.host, '127.0.0.1');
    assert.ok(server.port > 0);
    assert.equal(server.port, addr.port);
  });

  it('rejects invalid options with a message naming the option', async function () {
    await assert.rejects(StoreServer.start({ host: '127.0.0.1', port: -1, token: TOKEN }), /^RangeError: options\.port: expected/);
    await assert.rejects(StoreServer.start({ host: '127.0.0.1', port: 0, token: '' }), /^TypeError: options\.token: expected/);
    await assert.rejects(StoreServer.start({ host: '', port: 0, token: TOKEN }), /^TypeError: options\.host: expected/);
  });

  it('round-trips SET, GET, ADD and WAIT after a good HELLO', async function () {
    const c = await StoreClient.authed(server.port, TOKEN);
    assert.deepEqual(await c.request(encode.set('a', Buffer.from([1, 2, 3]))), { status: Status.OK });
    assert.deepEqual(await c.request(encode.get('a', 1000)),
      { status: Status.VALUE, value: Buffer.from([1, 2, 3]) });

    let r = await c.request(encode.add('n', 5));
    assert.equal(r.status, Status.VALUE);
    assert.equal(r.value.readBigInt64LE(0), 5n);
    r = await c.request(encode.add('n', -7));
    assert.equal(r.value.readBigInt64LE(0), -2n);
    r = await c.request(encode.get('n', 1000));
    assert.equal(r.value.length, 8);
    assert.equal(r.value.readBigInt64LE(0), -2n);
    r = await c.request(encode.add('big', 2n ** 62n));
    r = await c.request(encode.add('big', 2n ** 62n));
    assert.equal(r.value.readBigInt64LE(0), -(2n ** 63n), 'int64 addition wraps');

    assert.deepEqual(await c.request(encode.wait(['a', 'n'], 1000)), { status: Status.OK });
    assert.deepEqual(await c.request(encode.wait([], 1000)), { status: Status.OK });
    assert.deepEqual(await c.request(encode.set('empty', Buffer.alloc(0))), { status: Status.OK });
    assert.deepEqual(await c.request(encode.get('empty', 1000)), { status: Status.VALUE, value: Buffer.alloc(0) });
    await c.close();
  });

  it('reassembles frames that arrive a few bytes at a time', async function () {
    const c = await StoreClient.connect(server.port);
    const bytes = Buffer.concat([encode.hello(TOKEN), encode.set('k', 'split'), encode.get('k', 1000)]);
    const replies = [c.reply(), c.reply(), c.reply()];
    for (let i = 0; i < bytes.length; i += 3) {
      c.send(bytes.subarray(i, i + 3));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.deepEqual(await Promise.all(replies), [
      { status: Status.OK },
      { status: Status.OK },
      { status: Status.VALUE, value: Buffer.from('split') },
    ]);
    await c.close();
  });

  it('answers ADD on a non-integer value with ERROR and keeps the connection', async function () {
    const c = await StoreClient.authed(server.port, TOKEN);
    await c.request(encode.set('s', 'text'));
    const r = await c.request(encode.add('s', 1));
    assert.equal(r.status, Status.ERROR);
    assert.match(r.message, /"s"/);
    assert.equal((await c.request(encode.get('s', 100))).value.toString(), 'text');
    await c.close();
  });

  it('holds a GET until another connection sets the key', async function () {
    const waiter = await StoreClient.authed(server.port, TOKEN);
    const setter = await StoreClient.authed(server.port, TOKEN);
    let settled = false;
    const pending = waiter.request(encode.get('late', 5000)).then((r) => { settled = true; return r; });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(settled, false);
    assert.deepEqual(await setter.request(encode.set('late', 'value')), { status: Status.OK });
    assert.deepEqual(await pending, { status: Status.VALUE, value: Buffer.from('value') });
    await waiter.close();
    await setter.close();
  });

  it('holds a WAIT until every key exists', async function () {
    const waiter = await StoreClient.authed(server.port, TOKEN);
    const setter = await StoreClient.authed(server.port, TOKEN);
    let settled = false;
    const pending = waiter.request(encode.wait(['x', 'y'], 5000)).then((r) => { settled = true; return r; });
    await setter.request(encode.set('x', '1'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(settled, false);
    await setter.request(encode.add('y', 1));
    assert.deepEqual(await pending, { status: Status.OK });
    await waiter.close();
    await setter.close();
  });

  it('answers requests sent behind a pending GET in order', async function () {
    const c = await StoreClient.authed(server.port, TOKEN);
    const other = await StoreClient.authed(server.port, TOKEN);
    c.send(Buffer.concat([encode.get('k', 5000), encode.set('mine', '1'), encode.get('mine', 100)]));
    const replies = [c.reply(), c.reply(), c.reply()];
    await new Promise((resolve) => setTimeout(resolve, 50));
    await other.request(encode.set('k', 'v'));
    assert.deepEqual(await Promise.all(replies), [
      { status: Status.VALUE, value: Buffer.from('v') },
      { status: Status.OK },
      { status: Status.VALUE, value: Buffer.from('1') },
    ]);
    await c.close();
    await other.close();
  });

  it('answers TIMEOUT when a GET or WAIT times out, and stays usable', async function () {
    const c = await StoreClient.authed(server.port, TOKEN);
    const start = Date.now();
    let r = await c.request(encode.get('never', 100));
    assert.equal(r.status, Status.TIMEOUT);
    assert.match(r.message, /"never"/);
    assert.ok(Date.now() - start >= 90);
    r = await c.request(encode.wait(['never', 'nor'], 50));
    assert.equal(r.status, Status.TIMEOUT);
    assert.equal((await c.request(encode.get('never', 0))).status, Status.TIMEOUT);
    await c.request(encode.set('never', 'now'));
    assert.equal((await c.request(encode.get('never', 100))).value.toString(), 'now');
    await c.close();
  });

  it('refuses a wrong token and closes the connection', async function () {
    for (const token of ['job-secret-tokem', 'short', TOKEN + 'x', '']) {
      const c = await StoreClient.connect(server.port);
      const r = await c.request(encode.hello(token));
      assert.equal(r.status, Status.REFUSED, `token ${JSON.stringify(token)}`);
      await c.closed;
    }
  });

  it('refuses a wrong protocol version', async function () {
    const c = await StoreClient.connect(server.port);
    assert.equal((await c.request(encode.hello(TOKEN, 2))).status, Status.REFUSED);
    await c.closed;
  });

  it('refuses any request before HELLO', async function () {
    const c = await StoreClient.connect(server.port);
    const r = await c.request(encode.get('a', 10));
    assert.equal(r.status, Status.REFUSED);
    await c.closed;
    const d = await StoreClient.connect(server.port);
    assert.equal((await d.request(encode.set('a', 'b'))).status, Status.REFUSED);
    await d.closed;
    const f = await StoreClient.connect(server.port);
    assert.equal((await f.request(Buffer.concat([u32(1 << 20), Buffer.alloc(64)]))).status, Status.REFUSED,
      'an unauthenticated peer cannot announce a large frame');
    await f.closed;
    const e = await StoreClient.authed(server.port, TOKEN);
    assert.equal((await e.request(encode.get('a', 0))).status, Status.TIMEOUT, 'the refused SET stored nothing');
    await e.close();
  });

  it('closes a connection that sends an oversized frame, without disturbing others', async function () {
    const good = await StoreClient.authed(server.port, TOKEN);
    const pending = good.request(encode.get('later', 5000));
    const bad = await StoreClient.authed(server.port, TOKEN);
    bad.send(Buffer.concat([u32(0xffffffff), Buffer.alloc(1024)]));
    const r = await bad.reply();
    assert.equal(r.status, Status.ERROR);
    await bad.closed;
    const setter = await StoreClient.authed(server.port, TOKEN);
    assert.deepEqual(await setter.request(encode.set('later', 'ok')), { status: Status.OK });
    assert.deepEqual(await pending, { status: Status.VALUE, value: Buffer.from('ok') });
    await good.close();
    await setter.close();
  });

  it('honours a smaller maxFrameBytes', async function () {
    const small = await StoreServer.start({ host: '127.0.0.1', port: 0, token: TOKEN, maxFrameBytes: 64 });
    try {
      const c = await StoreClient.authed(small.port, TOKEN);
      assert.equal((await c.request(encode.set('k', Buffer.alloc(40)))).status, Status.OK);
      assert.equal((await c.request(encode.set('k', Buffer.alloc(80)))).status, Status.ERROR);
      await c.closed;
    } finally {
      await small.close();
    }
  });

  it('closes a connection that sends a malformed body', async function () {
    const bad = await StoreClient.authed(server.port, TOKEN);
    const body = Buffer.concat([Buffer.from([2]), blob('k'), blob('v'), Buffer.from([0])]);
    assert.equal((await bad.request(frame(body))).status, Status.ERROR);
    await bad.closed;
    const worse = await StoreClient.authed(server.port, TOKEN);
    assert.equal((await worse.request(frame(Buffer.from([99])))).status, Status.ERROR);
    await worse.closed;
    const tooMany = await StoreClient.authed(server.port, TOKEN);
    const wait = frame(Buffer.concat([Buffer.from([4]), u32(1e9), u32(0)]));
    assert.equal((await tooMany.request(wait)).status, Status.ERROR);
    await tooMany.closed;
  });

  it('survives a truncated frame followed by a close', async function () {
    const bad = await StoreClient.authed(server.port, TOKEN);
    bad.send(encode.set('half', 'value').subarray(0, 9));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await bad.close();
    const early = await StoreClient.connect(server.port);
    early.send(encode.hello(TOKEN).subarray(0, 6));
    await early.close();
    const c = await StoreClient.authed(server.port, TOKEN);
    assert.equal((await c.request(encode.get('half', 0))).status, Status.TIMEOUT);
    await c.close();
  });

  it('drops a waiter whose connection closes', async function () {
    const gone = await StoreClient.authed(server.port, TOKEN);
    gone.send(encode.get('w', 5000));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await gone.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(server.waitersByKey.size, 0, 'no waiter is left registered');
    const c = await StoreClient.authed(server.port, TOKEN);
    assert.deepEqual(await c.request(encode.set('w', 'x')), { status: Status.OK });
    await c.close();
  });

  it('closes promptly with waiters pending', async function () {
    const c = await StoreClient.authed(server.port, TOKEN);
    const pending = c.request(encode.get('forever', 60000));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const start = Date.now();
    await server.close();
    assert.ok(Date.now() - start < 1000);
    await assert.rejects(pending, /closed/);
  });
});

describe('Store.connect: a store client of its own', function () {
  this.timeout(10000);
  const { Store, init } = require('../dist');
  let server;
  const saved = {};
  const ENV = ['MASTER_ADDR', 'MASTER_PORT', 'COLLECTIVES_TOKEN', 'COLLECTIVES_RUN_ID'];

  beforeEach(async function () {
    server = await StoreServer.start({ host: '127.0.0.1', port: 0, token: TOKEN });
    for (const k of ENV) saved[k] = process.env[k];
  });

  afterEach(async function () {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await server.close();
  });

  it("puts keys under <run id>/<namespace>/store/ and reads the launcher's variables", async function () {
    Object.assign(process.env, { MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(server.port), COLLECTIVES_TOKEN: TOKEN, COLLECTIVES_RUN_ID: 'run7' });
    const store = Store.connect({ namespace: 'elastic' });
    assert.equal(store.prefix, 'run7/elastic/store/');
    await store.set('k', 'v');
    assert.equal(await store.add('n', 2), 2);
    store.close();
    // Seen by a raw client under the full key, so the launcher can write the same keys.
    const c = await StoreClient.authed(server.port, TOKEN);
    assert.deepEqual(await c.request(encode.get('run7/elastic/store/k', 1000)), { status: Status.VALUE, value: Buffer.from('v') });
    c.close();
  });

  it('a wrong token is STORE_REFUSED at the first request', async function () {
    const store = Store.connect({ namespace: 'x', masterPort: server.port, token: 'not-it' });
    await assert.rejects(store.get('k', 0), (e) => e.code === 'STORE_REFUSED' && /refused this client/.test(e.message));
    store.close();
  });

  it('bad options name the option', function () {
    assert.throws(() => Store.connect({}), (e) => e.code === 'INVALID_ARGUMENT' && /^options\.namespace: expected/.test(e.message));
    assert.throws(() => Store.connect({ namespace: '/abs' }), (e) => e.code === 'INVALID_ARGUMENT' && /^options\.namespace/.test(e.message));
    assert.throws(() => Store.connect({ namespace: 'x', masterPort: 0 }), (e) => e.code === 'INVALID_ARGUMENT' && /^options\.masterPort/.test(e.message));
    assert.throws(() => Store.connect({ namespace: 'x', host: 'h' }), (e) => e.code === 'INVALID_ARGUMENT' && /^options\.host/.test(e.message));
  });

  it("init() refuses a namespace that is not a name", async function () {
    await assert.rejects(init({ rank: 0, worldSize: 1, namespace: 'a b' }), (e) => e.code === 'INVALID_ARGUMENT' && /^options\.namespace: expected/.test(e.message));
  });
});
