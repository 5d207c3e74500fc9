'use strict';
// The declarations in dist/ are what TypeScript users compile against.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

describe('70 types', function () {
  it('accepts the documented usage and rejects wrong ops and non-buffers', function () {
    const tsc = require.resolve('typescript/bin/tsc');
    const project = path.join(__dirname, 'fixtures', 'types', 'tsconfig.json');
    const r = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' });
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
  });
});
