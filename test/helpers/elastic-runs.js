'use strict';
// The mocha side of the elastic workers (test/workers/elastic-*.js): their JSON lines, and the
// check both kinds share, that every step has one hash and one list of contributors wherever it
// was printed.

const assert = require('node:assert/strict');

const PREFIX = /^\[rank(\d+)\]: /;

/** The workers' JSON lines, and the launcher's and rank 0's plain lines. */
function parse(res) {
  const events = [];
  const text = [];
  for (const raw of (res.stdout + '\n' + res.stderr).split('\n')) {
    const line = raw.replace(PREFIX, '');
    if (line.startsWith('{"event"')) events.push(JSON.parse(line));
    else if (line.length > 0) text.push(line);
  }
  return { events, text };
}

/**
 * The `event` lines grouped by their `key` (a step number), each from 1 to the last: printed by
 * someone, with one hash and one list of contributors on every worker that printed it; `more`
 * checks the lines of one step further. Returns the contributors' ids per step.
 */
function checkEveryStep(events, event, key, more = () => {}) {
  const byStep = new Map();
  for (const e of events.filter((x) => x.event === event)) {
    if (!byStep.has(e[key])) byStep.set(e[key], []);
    byStep.get(e[key]).push(e);
  }
  const last = Math.max(...byStep.keys());
  const contributors = [];
  for (let k = 1; k <= last; k++) {
    const lines = byStep.get(k);
    assert.ok(lines, `nobody printed ${event} ${k}`);
    const hashes = new Set(lines.map((l) => l.hash));
    assert.equal(hashes.size, 1, `${event} ${k}: the state differs: ${lines.map((l) => `${l.id} ${l.hash.slice(0, 12)}`).join(', ')}`);
    const who = new Set(lines.map((l) => JSON.stringify(l.contributors)));
    assert.equal(who.size, 1, `${event} ${k}: the workers disagree on whom it averaged: ${[...who].join(' vs ')}`);
    more(lines, k);
    contributors.push(lines[0].contributors);
  }
  return { contributors, byStep, last };
}

function maxDiff(x, y) {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

const slotOf = (id) => Number(id.split('.')[0]);

module.exports = { parse, checkEveryStep, maxDiff, slotOf };
