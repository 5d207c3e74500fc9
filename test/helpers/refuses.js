'use strict';
// The argument tests' shared pieces: a one-rank communicator for a describe() block, and the
// assertion of the package's error rule for a bad argument (docs/errors.md).

const assert = require('node:assert/strict');
const { init } = require('../../dist');
const { FOREIGN } = require('./launch');

/**
 * A one-rank communicator for the enclosing describe() (`state.comm`), with other launchers'
 * variables hidden while it lives; every test must leave no work pending on it.
 */
function oneRankCommunicator() {
  const state = { comm: undefined };
  let savedEnv;
  before(async function () {
    savedEnv = { ...process.env };
    for (const k of FOREIGN) delete process.env[k];
    state.comm = await init({ worldSize: 1 });
  });
  after(async function () {
    if (state.comm) await state.comm.destroy();
    for (const k of FOREIGN) delete process.env[k];
    Object.assign(process.env, savedEnv);
  });
  afterEach(function () {
    if (state.comm) assert.equal(state.comm.pending, 0, 'a refused call must not leave work behind');
  });
  return state;
}

/** `call` throws synchronously an error of class `Kind` with code INVALID_ARGUMENT naming `name`. */
function refuses(call, Kind, name) {
  let thrown;
  let returned;
  try {
    returned = call();
  } catch (err) {
    thrown = err;
  }
  if (returned && typeof returned.catch === 'function') returned.catch(() => {});
  assert.ok(thrown, `expected a synchronous ${Kind.name} naming ${name}, but the call returned ${returned && returned.constructor ? returned.constructor.name : returned}`);
  assert.ok(thrown instanceof Kind, `expected a ${Kind.name}, got ${thrown.name}: ${thrown.message}`);
  assert.equal(thrown.code, 'INVALID_ARGUMENT', `code of "${thrown.message}"`);
  assert.ok(
    thrown.message.startsWith(`${name}:`) || thrown.message.startsWith(`${name} `),
    `the message should start with the argument's name ${JSON.stringify(name)}: ${JSON.stringify(thrown.message)}`,
  );
  return thrown;
}

module.exports = { oneRankCommunicator, refuses };
