// `normkit run`: N processes with the torchrun environment, output prefixed by rank, all stopped when one
// fails with the failed one's exit code, numeric flags refused in one line; a WebSocket group formed under it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

function normkit(args: string[], timeout = 60_000): { status: number | null; stdout: string; stderr: string; ms: number } {
  const started = Date.now();
  const result = spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8', timeout });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, ms: Date.now() - started };
}

describe('normkit run', () => {
  it('starts N ranks with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT and one random token, output prefixed', { timeout: 90_000 }, () => {
    const { status, stdout } = normkit(['run', '--ranks', '3', '--', process.execPath, '-e', 'const e = process.env; console.log([e.RANK, e.WORLD_SIZE, e.MASTER_ADDR, e.MASTER_PORT, e.NORMKIT_TOKEN].join(" "))']);
    assert.equal(status, 0);
    const lines = stdout.trim().split('\n').sort();
    assert.equal(lines.length, 3);
    const tokens = new Set<string>();
    const ports = new Set<string>();
    lines.forEach((line, r) => {
      const [prefix, rank, world, address, port, token] = line.replace(/^\[rank (\d)\] /, '$1 ').split(' ');
      assert.equal(prefix, String(r));
      assert.equal(rank, String(r));
      assert.equal(world, '3');
      assert.equal(address, '127.0.0.1');
      assert.match(port, /^\d+$/);
      assert.match(token, /^[0-9a-f]{48}$/);
      tokens.add(token);
      ports.add(port);
    });
    assert.equal(tokens.size, 1);
    assert.equal(ports.size, 1);
  });

  it('stops every rank when one fails, with its exit code', { timeout: 90_000 }, () => {
    const script = 'if (process.env.RANK === "1") setTimeout(() => process.exit(7), 300); else setTimeout(() => console.log("still here"), 30000);';
    const { status, stdout, stderr, ms } = normkit(['run', '--ranks', '3', '--', process.execPath, '-e', script]);
    assert.equal(status, 7);
    assert.match(stderr, /normkit run: rank 1 failed \(exit code 7\); stopping the other ranks/);
    assert.doesNotMatch(stdout, /still here/);
    assert.ok(ms < 25_000, `took ${ms} ms`);
    const missing = normkit(['run', '--ranks', '2', '--', '/nonexistent/command']);
    assert.equal(missing.status, 127);
  });

  it('refuses bad flags with one line and exit code 2', { timeout: 90_000 }, () => {
    for (const args of [['--ranks', '0'], ['--ranks', '1e9'], ['--ranks', 'two'], ['--ranks', '2.5'], ['--ranks', '2', '--port', '70000'], ['--ranks', '2', '--port', '-1']]) {
      const { status, stderr } = normkit(['run', ...args, '--', 'true']);
      assert.equal(status, 2, args.join(' '));
      assert.match(stderr, /^normkit run: --(ranks|port) must be an integer in \[\d+, \d+\], got '.*'\n$/);
    }
    const noCommand = normkit(['run', '--ranks', '2']);
    assert.equal(noCommand.status, 2);
    assert.match(noCommand.stderr, /expected -- and a command/);
  });

  it('a WebSocket group forms under it and all-reduces', { timeout: 90_000 }, () => {
    const rank = fileURLToPath(new URL('./websocket-allreduce-rank.ts', import.meta.url));
    const { status, stdout, stderr } = normkit(['run', '--ranks', '3', '--', process.execPath, '--import', 'tsx', rank]);
    assert.equal(status, 0, stderr);
    assert.deepEqual(stdout.trim().split('\n').sort(), ['[rank 0] sum 6', '[rank 1] sum 6', '[rank 2] sum 6']);
  });
});
