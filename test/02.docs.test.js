'use strict';
// The README is short and points into docs/: a moved file or a renamed heading would leave a
// reader at a dead link, so every relative link and every #anchor must resolve.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

function documents() {
  const docs = fs.existsSync(path.join(ROOT, 'docs'))
    ? fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)
    : [];
  return ['README.md', ...docs];
}

// Fenced code blocks and inline code spans are not markdown: a `[x](y)` inside them is not a
// link and a `# comment` inside a fence is not a heading.
function withoutCode(text) {
  const lines = text.split('\n');
  let fence = null;
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(`{3,}|~{3,})/.exec(lines[i]);
    if (fence === null && m) {
      fence = m[1];
      lines[i] = '';
    } else if (fence !== null) {
      if (lines[i].trim().startsWith(fence)) fence = null;
      lines[i] = '';
    }
  }
  return lines.join('\n');
}

function withoutInlineCode(line) {
  return line.replace(/(`+)[\s\S]*?\1/g, '');
}

// GitHub's heading ids: the heading's text (markup and link targets removed), lowercased,
// every character that is not a letter, digit, mark, underscore, space or hyphen dropped,
// spaces turned into hyphens; a repeated id gets -1, -2, … in order.
function slug(heading) {
  // Code spans keep their text as written (`<T>` is text there); elsewhere links, HTML tags and
  // emphasis are markup, not text.
  const text = heading
    .split(/(`+[^`]*`+)/)
    .map((part, i) =>
      i % 2 === 1
        ? part.replace(/`/g, '')
        : part.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '').replace(/\*/g, ''),
    )
    .join('')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

const anchorCache = new Map();
function anchorsOf(file) {
  if (!anchorCache.has(file)) {
    const seen = new Map();
    const ids = new Set();
    for (const line of withoutCode(fs.readFileSync(file, 'utf8')).split('\n')) {
      const m = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
      if (!m) continue;
      const base = slug(m[1]);
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      ids.add(n === 0 ? base : `${base}-${n}`);
    }
    anchorCache.set(file, ids);
  }
  return anchorCache.get(file);
}

function linksOf(text) {
  const links = [];
  for (const line of withoutCode(text).split('\n')) {
    const plain = withoutInlineCode(line);
    // [text](target "title") and ![alt](target); the target ends at a space or the parenthesis.
    for (const m of plain.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push(m[1]);
    // Reference definitions: [name]: target
    const def = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(plain);
    if (def) links.push(def[1]);
  }
  return links;
}

// Why `link` in `doc` is broken, or null when it resolves.
function problem(doc, link) {
  if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) return null; // http:, mailto:, …
  const hash = link.indexOf('#');
  const target = decodeURIComponent(hash < 0 ? link : link.slice(0, hash));
  const anchor = hash < 0 ? null : decodeURIComponent(link.slice(hash + 1));
  const file = target === '' ? path.join(ROOT, doc) : path.resolve(path.dirname(path.join(ROOT, doc)), target);
  if (path.relative(ROOT, file).startsWith('..')) return `${target} is outside the repository`;
  if (!fs.existsSync(file)) return `${path.relative(ROOT, file)} does not exist`;
  if (anchor === null || anchor === '') return null;
  if (!file.endsWith('.md') || fs.statSync(file).isDirectory()) return `#${anchor} points into ${path.relative(ROOT, file)}, which has no headings`;
  if (!anchorsOf(file).has(anchor)) return `${path.relative(ROOT, file)} has no heading whose id is "${anchor}"`;
  return null;
}

describe('02 docs', function () {
  it('the heading ids follow GitHub', function () {
    assert.equal(slug('`init(options?) → Promise<Communicator>`'), 'initoptions--promisecommunicator');
    assert.equal(slug('Collectives on device memory (NCCL)'), 'collectives-on-device-memory-nccl');
    assert.equal(slug('`group(fn)`: device calls as one NCCL group'), 'groupfn-device-calls-as-one-nccl-group');
    assert.equal(slug('[Errors](errors.md) and more'), 'errors-and-more');
  });

  it('the README links to every document in docs/', function () {
    const linked = new Set(linksOf(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).map((l) => l.split('#')[0]));
    const missing = documents().slice(1).filter((d) => !linked.has(d));
    assert.deepEqual(missing, [], `README.md does not link to ${missing.join(', ')}`);
  });

  for (const doc of documents()) {
    it(`every relative link and anchor in ${doc} resolves`, function () {
      const broken = [];
      for (const link of linksOf(fs.readFileSync(path.join(ROOT, doc), 'utf8'))) {
        const why = problem(doc, link);
        if (why) broken.push(`${doc}: (${link}): ${why}`);
      }
      assert.deepEqual(broken, [], `broken links:\n  ${broken.join('\n  ')}`);
    });
  }
});
