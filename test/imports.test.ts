// The import graph of src/: no cycles (type-only imports count) and data flowing one way,
// nn → kernels (or reference) → core; bench never reaches up into cli.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const srcDir = fileURLToPath(new URL('../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The src/ file a relative specifier names ('./x.js' is './x.ts' on disk), or undefined (a package). */
function resolveSpecifier(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(from, '..', specifier);
  const candidates = [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts'), base];
  const found = candidates.find((path) => path.endsWith('.ts') && existsSync(path));
  if (found === undefined) throw new Error(`${relative(srcDir, from)}: cannot resolve '${specifier}'`);
  return found;
}

/** Every import of every file under src/, keyed by its path relative to src/: static, type-only, re-exports and import(). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(srcDir)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles
      .map((ref) => resolveSpecifier(file, ref.fileName))
      .filter((path): path is string => path !== undefined)
      .map((path) => relative(srcDir, path));
    graph.set(relative(srcDir, file), [...new Set(targets)]);
  }
  return graph;
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(next) ?? 0));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) ?? 0, index.get(next) ?? 0));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop();
        if (member === undefined) break;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

/** Imports from a file under one of `from` into a file under `into`, as 'a -> b'. */
function arrows(graph: Map<string, string[]>, from: readonly string[], into: string): string[] {
  return [...graph].flatMap(([file, targets]) =>
    from.some((dir) => file.startsWith(dir)) ? targets.filter((target) => target.startsWith(into)).map((target) => `${file} -> ${target}`) : [],
  );
}

describe('import graph of src/', () => {
  const graph = importGraph();

  it('sees the library: every layer and its arrows', () => {
    assert.ok(graph.size > 100, `only ${graph.size} files found under src/`);
    assert.ok(graph.get('nn/batchnorm.ts')?.includes('nn/normalization.ts'), 'nn/batchnorm.ts -> nn/normalization.ts not seen');
    assert.ok(graph.get('index.ts')?.some((target) => target.startsWith('nn/')), 'index.ts -> nn/ not seen');
    // The scanner sees type-only imports and re-exports too.
    assert.deepEqual(cycles(new Map([['a.ts', ['b.ts']], ['b.ts', ['a.ts']], ['c.ts', ['a.ts']]])), [['a.ts', 'b.ts']]);
  });

  it('has no import cycle (type-only imports included)', () => {
    assert.deepEqual(cycles(graph), []);
  });

  it('core/, reference/ and kernels/ never import nn/', () => {
    assert.deepEqual(arrows(graph, ['core/', 'reference/', 'kernels/'], 'nn/'), []);
  });

  it('core/ imports nothing from above it (errors.ts aside)', () => {
    const upward = [...graph]
      .filter(([file]) => file.startsWith('core/'))
      .flatMap(([file, targets]) => targets.filter((target) => !target.startsWith('core/') && target !== 'errors.ts').map((target) => `${file} -> ${target}`));
    assert.deepEqual(upward, []);
  });

  it('bench/ never imports cli/', () => {
    assert.deepEqual(arrows(graph, ['bench/'], 'cli/'), []);
  });
});
