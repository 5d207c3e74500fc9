// `npx mocha test/NN.name.test.js` runs that file alone; a bare `mocha` (npm test) runs every suite.
'use strict';

const named = process.argv.slice(2).some((a) => /\.test\.[cm]?js$/.test(a));

module.exports = {
  ...(named ? {} : { spec: ['test/*.test.js', 'test/gpu/*.test.js'] }),
  reporter: 'test/reporter.js',
  timeout: 120000,
  exit: true,
};
