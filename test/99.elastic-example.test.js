'use strict';
// examples/train-elastic.js through `collectives-run --elastic`: Fashion-MNIST elastic DiLoCo on
// 3 workers, one of which the test kills (SIGKILL) once training is under way. The run must end
// with every worker, the loss and the rejoin logged, and a test accuracy well above chance.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { CLI, FOREIGN, collect, assertSucceeded } = require('./helpers/launch');
const { childPids } = require('./helpers/processes');
const { FASHION_MNIST_DIR } = require('../dist/training');

const EXAMPLE = path.join(__dirname, '..', 'examples', 'train-elastic.js');

describe('99 elastic training: the Fashion-MNIST example', function () {
  this.timeout(240000);
  let tmp;
  before(function () {
    if (!fs.existsSync(FASHION_MNIST_DIR)) {
      console.log(`      skipped: ${FASHION_MNIST_DIR} is missing (apt-get install dataset-fashion-mnist)`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'collectives-elastic-'));
  });
  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a worker killed mid-run is dropped and restarted, rejoins, and training ends above chance', async function () {
    const env = { ...process.env };
    for (const k of FOREIGN) delete env[k];
    const json = path.join(tmp, 'result.json');
    const child = spawn(process.execPath, [CLI, '--elastic', '--max-restarts', '1', '--nproc-per-node', '3', '--master-port', '0', '--grace-ms', '1000',
      EXAMPLE, '--steps', '500', '--sync-every', '25', '--log-every', '50', '--json', json], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let killed = null;
    child.stdout.on('data', (d) => {
      // Once the first losses are logged, kill a worker that is not rank 0's launcher slot.
      if (killed === null && /step 100: loss/.test(d.toString())) {
        const victims = childPids(child.pid);
        killed = victims[victims.length - 1];
        process.kill(killed, 'SIGKILL');
      }
    });
    const res = await collect(child, Date.now(), 200000);
    assertSucceeded(res, 'examples/train-elastic.js');
    assert.ok(killed !== null, 'the test killed a worker');
    const out = res.stdout + res.stderr;
    assert.match(out, /was killed by SIGKILL \(exit status 137\); restarting it/);
    assert.match(out, /generation 2: workers [0-2],[0-2] \(lost [0-2] after /);
    assert.match(out, /generation 3: workers [0-2],[0-2],[0-2] \(joined [0-2]\)/);
    assert.ok((out.match(/recovered: \{/g) ?? []).length >= 2, 'the survivors report their recovery');
    const finished = [...out.matchAll(/finished: (\{.*\})/g)].map((m) => JSON.parse(m[1]));
    assert.equal(finished.length, 3, 'every worker finished');
    assert.equal(new Set(finished.map((f) => f.globalHash)).size, 1, `one θ_global on every worker: ${JSON.stringify(finished)}`);
    const result = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.equal(result.outerSteps, 20);
    assert.equal(result.workers, 3);
    assert.ok(result.testAccuracy > 0.6, `test accuracy ${result.testAccuracy}`);
  });
});
