'use strict';
// Shared by the rank scripts in test/workers: collects mismatches so that one
// run reports all of them, and turns an unexpected error into a non-zero exit
// at once (the other ranks would otherwise wait for a collective that never
// comes until their timeout).

const { firstDifference } = require('./elements');

const MAX_REPORTED = 40;

class Checker {
  constructor(rank) {
    this.rank = rank;
    this.passed = 0;
    this.failures = [];
  }

  /** Typed arrays equal byte for byte. */
  same(name, got, want) {
    const d = firstDifference(got, want);
    if (d === null) this.passed++;
    else this.fail(name, d);
  }

  ok(name, condition, message) {
    if (condition) this.passed++;
    else this.fail(name, message);
  }

  equal(name, got, want) {
    if (Object.is(got, want)) this.passed++;
    else this.fail(name, `got ${String(got)}, expected ${String(want)}`);
  }

  fail(name, message) {
    this.failures.push(`${name}: ${message}`);
  }

  /** Prints the outcome; a rank with failures exits with 1. */
  report() {
    if (this.failures.length === 0) {
      console.log(`rank ${this.rank}: all ${this.passed} checks passed`);
      return;
    }
    for (const f of this.failures.slice(0, MAX_REPORTED)) console.error(`MISMATCH ${f}`);
    if (this.failures.length > MAX_REPORTED) console.error(`… and ${this.failures.length - MAX_REPORTED} more`);
    console.error(`rank ${this.rank}: ${this.failures.length} of ${this.failures.length + this.passed} checks failed`);
    process.exitCode = 1;
  }
}

/** Runs `main`; a thrown error or rejection ends this rank with code 1. */
function run(main) {
  main().catch((err) => {
    const detail = err && err.code ? ` [code ${err.code}]` : '';
    console.error(`FATAL ${err && err.stack ? err.stack : String(err)}${detail}`);
    process.exit(1);
  });
}

/** Awaits `work` and names the case in the error if it fails. */
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

module.exports = { Checker, run, settle, sleep };
