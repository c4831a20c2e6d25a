// The repository's fixtures are a copy of ../shared/fixtures (their source): where that folder exists, they must be identical.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fixtureDir } from './helpers.ts';

// ../shared/fixtures beside the checkout, or where NORMKIT_SHARED_FIXTURES points (CI tests a clone made elsewhere)
const sharedDir = process.env.NORMKIT_SHARED_FIXTURES ?? fileURLToPath(new URL('../../shared/fixtures/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

describe('fixtures copy', () => {
  it('holds the files every suite reads', () => {
    for (const name of ['README.md', 'pytorch-batchnorm.json', 'pytorch-norms.json', 'variants.json', 'fold.json', 'safetensors/expect.json']) {
      assert.ok(existsSync(join(fixtureDir, name)), `${name} is missing from ${fixtureDir}`);
    }
  });

  it('equals ../shared/fixtures byte for byte where that folder exists', { skip: existsSync(sharedDir) ? false : 'no ../shared/fixtures beside the checkout (a plain clone): the copy is all there is' }, () => {
    const ours = files(fixtureDir).map((p) => relative(fixtureDir, p)).sort();
    const theirs = files(sharedDir).map((p) => relative(sharedDir, p)).sort();
    assert.deepEqual(ours, theirs, 'the file lists differ: copy ../shared/fixtures in again');
    for (const name of theirs) {
      assert.ok(readFileSync(join(fixtureDir, name)).equals(readFileSync(join(sharedDir, name))), `${name} differs from ../shared/fixtures: copy it in (never edit a fixture)`);
    }
  });
});
