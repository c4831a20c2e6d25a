// `npm start` run as a developer runs it, then stopped by a signal sent to npm: the server must stop with it.
// It runs in copies of the sources (its build must not rewrite the dist/ and web/dist/ other tests read).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const root = fileURLToPath(new URL('..', import.meta.url));
const copies: string[] = [];
const groups: number[] = [];

/** A copy of what `npm start` builds from, with this checkout's node_modules. */
function copySources(): string {
  const copy = mkdtempSync(join(tmpdir(), 'normkit-start-'));
  copies.push(copy);
  for (const path of ['package.json', 'tsconfig.json', 'scripts', 'src', 'types', 'web']) {
    cpSync(join(root, path), join(copy, path), { recursive: true, filter: (source) => !source.startsWith(join(root, 'web', 'dist')) });
  }
  symlinkSync(realpathSync(join(root, 'node_modules')), join(copy, 'node_modules'));
  return copy;
}

after(() => {
  // a server that outlived npm (the failure this file tests for) would keep the test running: end its group
  for (const group of groups) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // the group is gone: nothing outlived npm
    }
  }
  for (const copy of copies) rmSync(copy, { recursive: true, force: true });
});

/** Resolves to whether something answers HTTP at `url`. */
async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

// one copy per signal, side by side: each npm start builds before it serves
describe('npm start', { concurrency: true }, () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`serves the page and stops its server when npm gets ${signal}`, async () => {
      // its own process group, so that whatever it leaves behind can be ended with it
      const npm = spawn('npm', ['start', '--', '--port', '0'], { cwd: copySources(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      groups.push(npm.pid ?? 0);
      let output = '';
      const exited = new Promise<number | null>((resolve) => {
        npm.on('exit', resolve);
      });
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`npm start printed no URL within 120 s:\n${output}`));
        }, 120_000);
        const read = (chunk: Buffer) => {
          output += chunk.toString();
          const match = /normkit explainer page: (http:\S+)/.exec(output);
          if (match !== null) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        };
        npm.stdout.on('data', read);
        npm.stderr.on('data', read);
        void exited.then((code) => {
          reject(new Error(`npm start exited (${code}) before serving:\n${output}`));
        });
      });
      assert.ok(await answers(url), `the page at ${url} does not answer`);
      npm.kill(signal);
      await exited;
      // the server was the script's process: once npm is gone, nothing answers on its port
      const deadline = Date.now() + 5000;
      while ((await answers(url)) && Date.now() < deadline) await new Promise((resolve) => {
        setTimeout(resolve, 100);
      });
      assert.equal(await answers(url), false, `the server at ${url} outlived npm (${signal}):\n${output}`);
    });
  }
});
