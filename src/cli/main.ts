#!/usr/bin/env node
/** The `normkit` command. */
import { NormkitError } from '../errors.js';
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
    return await command(rest);
  } catch (error) {
    if (error instanceof NormkitError || (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      console.error(`normkit ${name}: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv.slice(2));
