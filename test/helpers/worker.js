'use strict';
// Shared by the rank scripts in test/workers. A rank's checks are grouped in
// named cases; each case ends with one JSON line on stdout,
//   {"case": NAME, "ok": BOOL, "detail": WHAT_DIFFERED, "rank": R, "checks": N}
// which test/helpers/cases.js reads on the mocha side, so that a failure
// names its case and a case that never ran is missed by name. A line is
// printed as soon as its case ends, so a rank that dies midway still shows
// how far it got. An unexpected error ends the rank with code 1 at once (the
// other ranks would otherwise wait for a collective that never comes until
// their timeout), after a failing line for the case it happened in.

const { firstDifference } = require('./elements');

// Per case, so that one broken case cannot print thousands of lines.
const MAX_DETAILED = 5;
// Per rank, on stderr for a person reading the raw output.
const MAX_REPORTED = 40;

/** The one checker of this process, for run() to close its open case on a fatal error. */
let active = null;

/** Prints one case line; `fields` may add more (a hash, a value for the test to check). */
function caseLine({ case: name, ok, detail = '', rank, ...fields }) {
  console.log(JSON.stringify({ case: name, ok, detail, ...(rank === undefined ? {} : { rank }), ...fields }));
}

class Checker {
  constructor(rank) {
    this.rank = rank;
    this.current = null;
    this.names = new Set();
    this.failed = 0;
    this.reported = 0;
    active = this;
  }

  /** Starts case `name`, ending the one before: the checks that follow count toward it. */
  begin(name) {
    this.end();
    // Two cases of one name would hide one behind the other on the mocha side.
    if (this.names.has(name)) throw new Error(`case ${JSON.stringify(name)} begun twice`);
    this.names.add(name);
    this.current = { name, checks: 0, failures: [], fields: {} };
  }

  /** Ends the open case, if any, and prints its line. */
  end() {
    const c = this.current;
    if (!c) return;
    this.current = null;
    const ok = c.failures.length === 0;
    let detail = c.failures.slice(0, MAX_DETAILED).join('; ');
    if (c.failures.length > MAX_DETAILED) detail += `; … and ${c.failures.length - MAX_DETAILED} more`;
    if (!ok) {
      this.failed++;
      for (const f of c.failures) {
        if (this.reported++ < MAX_REPORTED) console.error(`MISMATCH ${c.name}: ${f}`);
      }
    }
    caseLine({ case: c.name, ok, detail: ok ? '' : `${c.failures.length} of ${c.checks} checks failed: ${detail}`, rank: this.rank, checks: c.checks, ...c.fields });
  }

  /** Adds `key: value` to the open case's line, for the test to read. */
  attach(key, value) {
    this.open().fields[key] = value;
  }

  /** Typed arrays equal byte for byte. */
  same(name, got, want) {
    const d = firstDifference(got, want);
    this.record(name, d === null, d);
  }

  ok(name, condition, message) {
    this.record(name, Boolean(condition), message);
  }

  equal(name, got, want) {
    this.record(name, Object.is(got, want), `got ${String(got)}, expected ${String(want)}`);
  }

  fail(name, message) {
    this.record(name, false, message);
  }

  record(name, passed, message) {
    const c = this.open();
    c.checks++;
    if (!passed) c.failures.push(`${name}: ${message}`);
  }

  open() {
    // A check outside every case would be reported nowhere.
    if (!this.current) throw new Error('a check outside any case: call begin(name) first');
    return this.current;
  }

  /** Ends the last case; a rank with a failed case exits with 1. */
  report() {
    this.end();
    if (this.failed > 0) {
      console.error(`rank ${this.rank}: ${this.failed} of ${this.names.size} cases failed`);
      process.exitCode = 1;
    }
  }

  /** On a fatal error: a failing line for the case it happened in. */
  abandon(err) {
    const c = this.current;
    const name = c ? c.name : this.names.size > 0 ? 'teardown' : 'setup';
    this.current = null;
    const before = c && c.failures.length > 0 ? `; before it: ${c.failures.slice(0, MAX_DETAILED).join('; ')}` : '';
    caseLine({ case: name, ok: false, detail: `${describe(err)}${before}`, rank: this.rank, checks: c ? c.checks : 0 });
  }
}

function describe(err) {
  const code = err && err.code ? ` [code ${err.code}]` : '';
  return `${err && err.name ? `${err.name}: ` : ''}${err && err.message !== undefined ? err.message : String(err)}${code}`;
}

/** Runs `main`; a thrown error or rejection ends this rank with code 1. */
function run(main) {
  main().catch((err) => {
    if (active) active.abandon(err);
    const detail = err && err.code ? ` [code ${err.code}]` : '';
    console.error(`FATAL ${err && err.stack ? err.stack : String(err)}${detail}`);
    process.exit(1);
  });
}

/** Awaits `work` and names the step in the error if it fails. */
async function settle(name, work) {
  try {
    return await work;
  } catch (err) {
    const e = new Error(`${name}: ${err && err.message}`);
    e.code = err && err.code;
    throw e;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** How `work` settled and how long it took: { ok, err?, ms }, for checks on failures. */
async function outcome(work) {
  const t0 = Date.now();
  try {
    await work;
    return { ok: true, ms: Date.now() - t0 };
  } catch (err) {
    return { ok: false, err, ms: Date.now() - t0 };
  }
}

/** An outcome in words, for a check's detail. */
const show = (r) => (r.ok ? `resolved after ${r.ms} ms` : `${r.err && r.err.name} (${r.err && r.err.code}) after ${r.ms} ms: ${r.err && r.err.message}`);

module.exports = { Checker, caseLine, run, settle, sleep, outcome, show };
