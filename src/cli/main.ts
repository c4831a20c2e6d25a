#!/usr/bin/env node
/** The `normkit` command. */
import { NormkitError } from '../index.js';
import { benchCommand, benchUsage } from './bench.js';
import { conformanceCommand, conformanceUsage } from './conformance.js';
import { demoCommand, demoUsage } from './demo.js';
import { gradcheckCommand, gradcheckUsage } from './gradcheck.js';

const usage = `normkit: exact, fast and visible normalization layers

commands:
${conformanceUsage}

${gradcheckUsage}

${benchUsage}

${demoUsage}`;

const commands = new Map<string, (args: string[]) => number | Promise<number>>([
  ['conformance', conformanceCommand],
  ['gradcheck', gradcheckCommand],
  ['bench', benchCommand],
  ['demo', demoCommand],
]);

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0) {
    console.log(usage);
    return 2;
  }
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage);
    return 0;
  }
  const command = commands.get(name);
  if (command === undefined) {
    console.error(`normkit: unknown command '${name}'\n\n${usage}`);
    return 2;
  }
  try {
    return await command(joinNegativeValues(rest));
  } catch (error) {
    console.error(`normkit ${name}: ${describeFailure(error)}`);
    if (process.env.NORMKIT_DEBUG !== undefined && error instanceof Error) console.error(error.stack);
    return isUsageError(error) ? 2 : 1;
  }
}

/** `--steps -1` as `--steps=-1`: parseArgs reads a value starting with a dash as a missing value. */
function joinNegativeValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (i + 1 < args.length && /^--[a-z]/.test(args[i]) && !args[i].includes('=') && /^-(\d|\.\d|Infinity)/.test(args[i + 1])) {
      out.push(`${args[i]}=${args[i + 1]}`);
      i++;
    } else {
      out.push(args[i]);
    }
  }
  return out;
}

function errorCode(error: unknown): string {
  return error instanceof Error && 'code' in error ? String(error.code) : '';
}

/** Bad input of the user's: a NormkitError, an argument parseArgs rejects, or a file that cannot be read. */
function isUsageError(error: unknown): boolean {
  return error instanceof NormkitError || errorCode(error).startsWith('ERR_PARSE_ARGS') || /^E[A-Z]+$/.test(errorCode(error));
}

/** One line for any failure; the stack only with NORMKIT_DEBUG set. */
function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = errorCode(error);
  const path = 'path' in error ? String(error.path) : null;
  if (path !== null && code === 'ENOENT') return `${path}: no such file or directory`;
  if (path !== null && code === 'EISDIR') return `${path}: is a directory, expected a file`;
  if (path !== null && (code === 'EACCES' || code === 'EPERM')) return `${path}: permission denied`;
  if (error instanceof NormkitError || code.startsWith('ERR_PARSE_ARGS') || path !== null) return error.message;
  return `internal error: ${error.message} (NORMKIT_DEBUG=1 prints the stack; please report it)`;
}

process.exitCode = await main(process.argv.slice(2));
