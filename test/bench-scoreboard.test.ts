// The benchmark's standalone phases and scoreboard: PyTorch's standalone output, the native probe, the scoreboard's ratios.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { strongestBound } from '../src/bench/harness.ts';
import { nativeProbeScript, parseNativeProbe, probeNative } from '../src/bench/native-probe.ts';
import { findTorchPython, pytorchScript } from '../src/bench/peers/pytorch.ts';
import { parseStandalone, runPytorchStandalone } from '../src/bench/peers/pytorch-standalone.ts';
import { strongest } from '../src/bench/probe.ts';
import { formatScoreboardMarkdown, scoreboardCells } from '../src/bench/scoreboard.ts';
import type { Row } from '../src/bench/types.ts';
import { shapeSpecs } from '../src/bench/types.ts';

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

const row = (system: string, threads: number, op: Row['op'], ms: number, shape = 'A', layout: Row['layout'] = 'channels-first'): Row => ({ system, threads, shape, layout, op, median_ms: ms, min_ms: ms });

function hasCompiler(): boolean {
  return spawnSync('sh', ['-c', 'command -v "${CC:-cc}"']).status === 0;
}

describe('PyTorch standalone output', () => {
  it('becomes rows named with the version; a row lacking a field or with a bad op is refused', () => {
    const good = { system: 'pytorch', threads: 2, shape: 'A', layout: 'channels-last', op: 'backward', median_ms: 2.5, min_ms: 2.25, iqr_ms: 0.1, runs: 9 };
    const parsed = parseStandalone(JSON.stringify({ torch: '1.13.0a0', rows: [good] }));
    assert.equal(parsed.version, '1.13.0a0');
    assert.deepEqual(parsed.rows, [{ system: 'pytorch-1.13.0a0', threads: 2, shape: 'A', layout: 'channels-last', op: 'backward', median_ms: 2.5, min_ms: 2.25 }]);
    for (const bad of [{ ...good, op: 'sideways' }, { ...good, median_ms: 0 }, { ...good, threads: 1.5 }, { ...good, layout: 'nhwc' }, { ...good, shape: undefined }]) {
      assert.throws(() => parseStandalone(JSON.stringify({ torch: '1.13.0a0', rows: [bad] })), /PyTorch standalone printed a row without/, JSON.stringify(bad));
    }
    assert.throws(() => parseStandalone('{"rows": []}'), /no \{torch, rows\}/);
    assert.throws(() => parseStandalone('Traceback'), SyntaxError);
  });

  it('asks the script for the shapes and thread counts, under PyTorch default thread settings (no OMP_WAIT_POLICY added)', async () => {
    // a fake script: answers one row that echoes its arguments and whether OMP_WAIT_POLICY reached it
    const script = join(mkdtempSync(join(tmpdir(), 'normkit-fake-standalone-')), 'standalone.mjs');
    writeFileSync(
      script,
      `const args = process.argv.slice(2);
const at = (flag) => args[args.indexOf(flag) + 1];
const op = process.env.OMP_WAIT_POLICY === undefined ? 'forward' : 'inference';
console.log(JSON.stringify({ torch: args.join(' '), rows: [{ threads: Number(at('--threads').split(',').at(-1)), shape: at('--shapes'), layout: 'channels-first', op, median_ms: 1, min_ms: 1 }] }));
`,
    );
    const saved = process.env.OMP_WAIT_POLICY;
    delete process.env.OMP_WAIT_POLICY;
    try {
      const result = await runPytorchStandalone({ python: [process.execPath], script, threads: [1, 2, 2], shapes: ['A', 'LN'], minRunTime: 0.5 });
      assert.equal(result.version, 'standalone --json --threads 1,2 --shapes A,LN --min-run-time 0.5');
      assert.deepEqual(
        result.rows.map((r) => [r.threads, r.shape, r.op]),
        [[2, 'A,LN', 'forward']],
      );
    } finally {
      if (saved !== undefined) process.env.OMP_WAIT_POLICY = saved;
    }
  });

  it('a failing script rejects with its last error line', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'normkit-fake-standalone-')), 'fails.mjs');
    writeFileSync(script, "process.stderr.write('Traceback\\nRuntimeError: no torch here\\n'); process.exit(1);\n");
    await assert.rejects(runPytorchStandalone({ python: [process.execPath], script, threads: [1], shapes: ['C'] }), /PyTorch standalone failed: RuntimeError: no torch here/);
  });
});

describe('PyTorch standalone (real torch)', () => {
  it('knows the shapes of src/bench/types.ts and times every op of shape C by torch.utils.benchmark', async (t) => {
    const found = await findTorchPython();
    if ('reason' in found) {
      t.skip(`PyTorch not tested: ${found.reason}`);
      return;
    }
    const specs = JSON.parse(execFileSync(found.python, [pytorchScript, 'standalone', '--list-specs'], { encoding: 'utf8' })) as unknown;
    assert.deepEqual(
      specs,
      shapeSpecs.map((s) => ({ name: s.name, norm: s.norm, shape: [...s.shape], layout: s.layout, groups: s.groups ?? 1 })),
    );
    const result = await runPytorchStandalone({ python: [found.python], threads: [1], shapes: ['C'], minRunTime: 0.05 });
    assert.equal(result.version, found.version);
    assert.deepEqual(
      result.rows.map((r) => [r.system, r.threads, r.shape, r.op]),
      ['forward', 'backward', 'forward+backward', 'inference'].map((op) => [`pytorch-${found.version}`, 1, 'C', op]),
    );
    const refused = spawnSync(found.python, [pytorchScript, 'standalone', '--shapes', 'D'], { encoding: 'utf8' });
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /expected --shapes among A,B,C,LN,GN/);
  });
});

describe('native bandwidth probe', () => {
  it('reads kernels named native <kernel>; refuses output without GB/s', () => {
    const text = JSON.stringify({ mb: 8, reps: 1, threads: 2, kernels: [{ name: 'copy', threads: 1, gbps: 30.5 }, { name: 'sum', threads: 2, gbps: 41 }] });
    assert.deepEqual(parseNativeProbe(text), [
      { kernel: 'native copy', threads: 1, gbps: 30.5 },
      { kernel: 'native sum', threads: 2, gbps: 41 },
    ]);
    assert.throws(() => parseNativeProbe('{"kernels": [{"name": "copy", "threads": 1}]}'), /without name, threads and GB\/s/);
    assert.throws(() => parseNativeProbe('{"kernels": [{"name": "copy", "threads": 0, "gbps": 3}]}'), /without name, threads and GB\/s/);
    assert.throws(() => parseNativeProbe('{}'), /printed no kernels/);
  });

  it('compiles and runs with the system C compiler: copy, add, sum and fill at 1 thread and all', async (t) => {
    if (!hasCompiler()) {
      t.skip('no C compiler here');
      return;
    }
    const probe = await probeNative(8, 1);
    assert.ok('kernels' in probe, 'reason' in probe ? probe.reason : '');
    const names = new Set(probe.kernels.map((k) => k.kernel));
    assert.deepEqual([...names].sort(), ['native add', 'native copy', 'native fill', 'native sum']);
    assert.ok(probe.kernels.some((k) => k.threads === 1));
    for (const k of probe.kernels) assert.ok(k.gbps > 0, JSON.stringify(k));
  });

  it('says why where there is no compiler', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'normkit-native-')), 'probe.sh');
    writeFileSync(script, `CC=/nonexistent/cc; export CC; . ${JSON.stringify(nativeProbeScript)}\n`);
    const probe = await probeNative(8, 1, script);
    assert.ok('reason' in probe);
    assert.match(probe.reason, /no C compiler \(\/nonexistent\/cc not found\)/);
  });
});

describe('strongest bound', () => {
  it('takes the highest finite bandwidth and names its kernel; a probe that measured nothing never sets it', () => {
    const wasm = strongest([
      { kernel: 'wasm copy', threads: 2, gbps: 18 },
      { kernel: 'wasm fill', threads: 1, gbps: 21 },
    ]);
    assert.equal(wasm.source, 'wasm fill, 1 thread');
    const native = strongest([{ kernel: 'native sum', threads: 2, gbps: 40 }]);
    assert.deepEqual(strongestBound([wasm, undefined, native]), { gbps: 40, source: 'native sum, 2 threads' });
    assert.deepEqual(strongestBound([strongest([]), wasm]), { gbps: 21, source: 'wasm fill, 1 thread' });
    assert.deepEqual(strongestBound([wasm, strongest([])]), { gbps: 21, source: 'wasm fill, 1 thread' });
  });
});

describe('scoreboard', () => {
  it('sets normkit-layer against PyTorch standalone and the bound, each side at its better thread count', () => {
    const rows = [
      row('normkit-layer', 1, 'forward', 2),
      row('normkit-layer', 2, 'forward', 1),
      row('pytorch-1.13.0a0', 1, 'forward', 4),
      row('pytorch-1.13.0a0', 2, 'forward', 3),
      row('dram-bound', 0, 'forward', 0.5),
      // other systems and the interleaved PyTorch rows are not on the scoreboard
      row('normkit-wasm', 2, 'forward', 0.1),
      row('pytorch-1.13.0a0-interleaved', 2, 'forward', 0.01),
      row('normkit-layer', 2, 'inference', 0.8, 'A', 'channels-last'),
    ];
    const bounds = new Map([['A channels-first', { gbps: 30, source: 'native sum, 1 thread' }]]);
    const { header, lines } = scoreboardCells({ rows, bounds, threads: 2, torch: '1.13.0a0' });
    assert.deepEqual(header, ['shape', 'op', 'normkit-layer 1t ms', 'normkit-layer 2t ms', 'PyTorch 1.13.0a0 standalone 1t ms', 'PyTorch 1.13.0a0 standalone 2t ms', 'DRAM bound ms', 'normkit / PyTorch', 'normkit / bound']);
    assert.deepEqual(lines, [
      ['A', 'forward', '2.00', '1.00', '4.00', '3.00', '0.50', '0.33', '2.00'],
      ['A (NHWC)', 'inference', '—', '0.80', '—', '—', '—', '—', '—'],
    ]);
    const markdown = formatScoreboardMarkdown({ rows, bounds, threads: 2, torch: '1.13.0a0' });
    assert.match(markdown, /^\| shape \| op \| normkit-layer 1t ms .*\|\n\|---\|/);
    assert.match(markdown, /\| A \| forward \| 2\.00 \| 1\.00 \| 4\.00 \| 3\.00 \| 0\.50 \| 0\.33 \| 2\.00 \|/);
    assert.match(markdown, /- A channels-first: 30\.0 GB\/s \(native sum, 1 thread\)/);
  });

  it('normkit bench --scoreboard writes it from one run (normkit-layer only where PyTorch is missing)', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'normkit-scoreboard-')), 'board.md');
    const env = { ...process.env, NORMKIT_TORCH_PYTHON: '/nonexistent/python' };
    const run = spawnSync(process.execPath, [cli, 'bench', '--shape', 'C', '--reps', '2', '--threads', '2', '--no-webgpu', '--no-native-probe', '--scoreboard', file], { encoding: 'utf8', env });
    assert.equal(run.status, 0, run.stderr);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /PyTorch \(not run\) 1t ms/);
    for (const op of ['forward', 'backward', 'forward\\+backward', 'inference']) assert.match(text, new RegExp(`\\| C \\| ${op} \\| [0-9.]+ \\| [0-9.]+ \\| — \\| — \\| [0-9.]+ \\| — \\| [0-9.]+ \\|`));
    assert.match(run.stdout, /^scoreboard$/m);
    assert.doesNotMatch(run.stdout, /normkit-js|tfjs/, 'without --systems the scoreboard times normkit-layer alone');
  });
});
