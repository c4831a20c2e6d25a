// Every relative link and #anchor in README.md and docs/*.md leads somewhere: the file exists and the anchor
// is a heading (GitHub's slug) or an explicit id in the target document.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The text outside fenced code blocks and inline code (links there are examples, not links). */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading slug: lower case, punctuation dropped (letters, marks, digits, `_`, `-` and spaces kept), spaces to `-`. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors a Markdown document defines: heading slugs (repeats numbered -1, -2, … as GitHub does) and explicit ids. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const text = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const match of text.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const base = slug(match[1]);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  for (const match of text.matchAll(/\b(?:id|name)="([^"]+)"/g)) anchors.add(match[1]);
  return anchors;
}

/** The link targets of a Markdown document: `[text](target)`, `![alt](target)`, and `src`/`href` attributes. */
export function linksOf(markdown: string): string[] {
  const text = prose(markdown);
  const links: string[] = [];
  for (const match of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push(match[1]);
  for (const match of text.matchAll(/\b(?:src|href)="([^"]+)"/g)) links.push(match[1]);
  return links;
}

/** The broken relative links of the document at `file`, each as `target: why`. */
export function brokenLinks(file: string, markdown: string, read: (path: string) => string | null): string[] {
  const broken: string[] = [];
  for (const target of linksOf(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: … — not checked offline
    const hash = target.indexOf('#');
    const pathPart = hash >= 0 ? target.slice(0, hash) : target;
    const anchor = hash >= 0 ? decodeURIComponent(target.slice(hash + 1)) : null;
    const path = pathPart === '' ? file : resolve(dirname(file), decodeURIComponent(pathPart));
    const content = read(path);
    if (content === null) {
      broken.push(`${target}: no such file`);
      continue;
    }
    if (anchor === null || anchor === '') continue;
    if (!path.endsWith('.md')) {
      broken.push(`${target}: an anchor into a file that is not Markdown`);
      continue;
    }
    if (!anchorsOf(content).has(anchor)) broken.push(`${target}: no heading or id '${anchor}' in ${relative(root, path)}`);
  }
  return broken;
}

/** A file's text; '' for a directory (a link to a folder is fine); null where nothing is. */
function readPath(path: string): string | null {
  if (!existsSync(path)) return null;
  return statSync(path).isDirectory() ? '' : readFileSync(path, 'utf8');
}

const documents = [join(root, 'README.md'), ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => join(root, 'docs', name))];

describe('links in README.md and docs/*.md', () => {
  it('finds the documents and their links', () => {
    assert.ok(documents.length >= 8, `only ${documents.length} documents`);
    const readmeLinks = linksOf(readFileSync(documents[0], 'utf8'));
    assert.ok(readmeLinks.some((l) => l.startsWith('docs/')), 'README.md links no document in docs/');
  });

  for (const file of documents) {
    it(`${relative(root, file)}: every relative link and anchor resolves`, () => {
      const broken = brokenLinks(file, readFileSync(file, 'utf8'), readPath);
      assert.deepEqual(broken, []);
    });
  }

  it('reports a missing file, a missing anchor and an anchor into a missing section, and accepts good ones', () => {
    const files = new Map<string, string>([
      [join(root, 'docs', 'a.md'), '# Title\n\n## Cost of float-float\n\n## Cost of float-float\n\n<a id="memory"></a>\n'],
    ]);
    const read = (path: string): string | null => files.get(path) ?? null;
    const doc = [
      '[ok](docs/a.md#cost-of-float-float) [ok](docs/a.md#cost-of-float-float-1) [ok](docs/a.md#memory)',
      '[ok](#here) [web](https://example.com/x#y)',
      '## Here',
      '[missing file](docs/b.md) [missing anchor](docs/a.md#threads) [own anchor](#nowhere)',
      '`[in code](docs/c.md)`',
      '```md\n[in a block](docs/d.md)\n```',
    ].join('\n');
    files.set(join(root, 'README.md'), doc);
    assert.deepEqual(brokenLinks(join(root, 'README.md'), doc, read), [
      'docs/b.md: no such file',
      "docs/a.md#threads: no heading or id 'threads' in docs/a.md",
      "#nowhere: no heading or id 'nowhere' in README.md",
    ]);
  });

  it('slugs headings as GitHub does', () => {
    assert.equal(slug('In a browser (`normkit bench --browser`)'), 'in-a-browser-normkit-bench---browser');
    assert.equal(slug("The command's libraries"), 'the-commands-libraries');
    assert.equal(slug('Errors, `out` and memory'), 'errors-out-and-memory');
    assert.equal(slug('Accuracy: float-float'), 'accuracy-float-float');
  });
});
