/** `normkit conformance [FILE...]`: every fixture case through the layers, a table, and a non-zero exit on failure. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Layout } from '../index.js';
import type { ConformanceRow } from '../conformance/run.js';
import { runFixtures } from '../conformance/run.js';
import { backendNames, defaultBackend, getBackend, NormkitError } from '../index.js';
import type { FixtureFile } from '../io/fixtures.js';
import { parseFixtures } from '../io/fixtures.js';
import { startWebGpu } from '../node/index.js';
import { ensureOutputFile, readTextFile } from './files.js';
import { formatNumber, formatTable } from '../io/table.js';

/** The PyTorch fixtures shipped in the package's fixtures/ folder (the same path from src/cli and dist/cli). */
const shippedFixtures = ['pytorch-batchnorm.json', 'pytorch-norms.json', 'variants.json'].map((name) => fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url)));

export const conformanceUsage = `usage: normkit conformance [FILE...] [--backend NAME] [--layout channels-first|channels-last] [--json] [--dump OUT.json]
  Runs every case of normalization-fixtures/1 files and compares each tensor with the float64 truth;
  without FILE, the PyTorch fixtures shipped in normkit's fixtures/ folder (pytorch-batchnorm.json, pytorch-norms.json, variants.json).
  --backend  ${backendNames.join(' | ')} (default: the fastest available, ${defaultBackend()} here)
  --layout   memory layout the layers run in; fixtures are transposed in and out (default channels-first)
  --json     print a machine-readable report instead of the table
  --dump     write the fixtures back with an "actual" object in every step`;

export async function conformanceCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      backend: { type: 'string', default: defaultBackend() },
      layout: { type: 'string', default: 'channels-first' },
      json: { type: 'boolean', default: false },
      dump: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(conformanceUsage);
    return 0;
  }
  const files = positionals.length > 0 ? positionals : shippedFixtures;
  // webgpu runs once started (Dawn, from the optional webgpu package)
  if (values.backend === 'webgpu') console.error(`webgpu adapter: ${await startWebGpu()}`);
  const backend = getBackend(values.backend).name;
  const layout = values.layout;
  if (layout !== 'channels-first' && layout !== 'channels-last') {
    throw new NormkitError('option', `--layout must be channels-first or channels-last, got '${layout}'`);
  }
  if (values.dump !== undefined) ensureOutputFile(values.dump, '--dump');
  const rows: (ConformanceRow & { file: string })[] = [];
  const dumps: FixtureFile[] = [];
  for (const file of files) {
    const fixtures = parseFixtures(readTextFile(file), file);
    if (fixtures.cases.length === 0) throw new NormkitError('fixture', `${file}: no cases to run`);
    const result = runFixtures(fixtures, { backend, layout: layout satisfies Layout });
    rows.push(...result.rows.map((r) => ({ ...r, file })));
    dumps.push(result.dump);
  }
  const failed = rows.filter((r) => !r.ok).length;
  const skipped = rows.filter((r) => r.skipped === true).length;
  const passed = rows.length - failed - skipped;
  if (values.dump !== undefined) {
    const merged = { format: 'normalization-fixtures/1', generator: dumps.map((d) => d.generator ?? '').join('; '), backend, layout, cases: dumps.flatMap((d) => d.cases) };
    writeFileSync(values.dump, JSON.stringify(merged, null, 1));
  }
  if (values.json) {
    console.log(JSON.stringify({ backend, layout, files, passed, failed, skipped, rows }, null, 1));
  } else {
    const table = formatTable(
      ['case', 'step', 'mode', 'tensor', 'ours', 'pytorch', 'bound', 'verdict'],
      rows.map((r) => [r.case, String(r.step), r.mode, r.tensor, formatNumber(r.error), formatNumber(r.torchError), formatNumber(r.bound), r.skipped === true ? r.detail : r.ok ? 'ok' : `FAIL ${r.detail}`.trim()]),
    );
    console.log(table);
    console.log(`\nbackend ${backend}, layout ${layout}: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  }
  return failed === 0 ? 0 : 1;
}
