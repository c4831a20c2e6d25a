/**
 * `normkit run --ranks N -- <command...>`: N processes of one command on this host, as torchrun
 * --nproc-per-node starts them. Each gets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (a free port unless
 * --port says) and NORMKIT_TOKEN (random, shared by the group); their output lines come through with a
 * `[rank r]` prefix. When one fails, the others get SIGTERM (SIGKILL after a grace period) and the exit
 * code is the failed one's.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { NormkitError } from '../errors.js';

export const runUsage = `usage: normkit run --ranks N [--port P] [--master-addr HOST] -- <command...>
    start N processes of <command> on this host, as torchrun --nproc-per-node does: each gets RANK,
    WORLD_SIZE, MASTER_ADDR (default 127.0.0.1), MASTER_PORT (default a free port) and a random
    NORMKIT_TOKEN; output lines are prefixed with [rank r]; when one fails the others are stopped and
    the exit code is the failed one's`;

/** The most processes one host run starts. */
const MAX_RANKS = 256;
/** How long a stopped rank has between SIGTERM and SIGKILL. */
const GRACE_MS = 5000;

function integerFlag(name: string, text: string | undefined, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    throw new NormkitError('option', `--${name} must be an integer in [${min}, ${max}], got '${text}'`);
  }
  return value;
}

/** A port nothing listens on now, on `host`. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** The exit code a shell reports for a process: its code, or 128 + the signal's number. */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal === null ? 0 : constants.signals[signal]);
}

export async function runCommand(args: string[]): Promise<number> {
  const split = args.indexOf('--');
  if (split === -1 || split === args.length - 1) throw new NormkitError('option', `expected -- and a command after the options\n${runUsage}`);
  const { values } = parseArgs({ args: args.slice(0, split), options: { ranks: { type: 'string' }, port: { type: 'string' }, 'master-addr': { type: 'string' } }, strict: true });
  if (values.ranks === undefined) throw new NormkitError('option', `--ranks is required\n${runUsage}`);
  const ranks = integerFlag('ranks', values.ranks, 1, MAX_RANKS, 1);
  const address = values['master-addr'] ?? '127.0.0.1';
  const port = integerFlag('port', values.port, 1, 65535, await freePort(address));
  const [command, ...commandArgs] = args.slice(split + 1);
  const token = randomBytes(24).toString('hex');
  const children: ChildProcess[] = [];
  let failure: { rank: number; code: number } | null = null;
  let running = ranks;
  return new Promise<number>((resolve) => {
    const stopOthers = (signal: NodeJS.Signals): void => {
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      }
      setTimeout(() => {
        for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, GRACE_MS).unref();
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      failure ??= { rank: -1, code: exitCodeOf(null, signal) };
      stopOthers(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const exited = (rank: number, code: number): void => {
      if (code !== 0 && failure === null) {
        failure = { rank, code };
        console.error(`normkit run: rank ${rank} failed (exit code ${code}); stopping the other ranks`);
        stopOthers('SIGTERM');
      }
      running--;
      if (running > 0) return;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(failure?.code ?? 0);
    };
    for (let rank = 0; rank < ranks; rank++) {
      const env = { ...process.env, RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(ranks), LOCAL_WORLD_SIZE: String(ranks), MASTER_ADDR: address, MASTER_PORT: String(port), NORMKIT_TOKEN: token };
      const child = spawn(command, commandArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      const prefix = `[rank ${rank}] `;
      createInterface({ input: child.stdout }).on('line', (line) => {
        process.stdout.write(prefix + line + '\n');
      });
      createInterface({ input: child.stderr }).on('line', (line) => {
        process.stderr.write(prefix + line + '\n');
      });
      let done = false;
      child.once('error', (error) => {
        process.stderr.write(`${prefix}cannot start '${command}': ${error.message}\n`);
        if (!done) {
          done = true;
          exited(rank, 127);
        }
      });
      child.once('close', (code, signal) => {
        if (!done) {
          done = true;
          exited(rank, exitCodeOf(code, signal));
        }
      });
    }
  });
}
