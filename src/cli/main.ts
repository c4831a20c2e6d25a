#!/usr/bin/env node
/** The `normkit` command. */
import { NormkitError } from '../errors.js';
import { conformanceCommand, conformanceUsage } from './conformance.js';
import { gradcheckCommand, gradcheckUsage } from './gradcheck.js';

const usage = `normkit: exact, fast and visible normalization layers

commands:
${conformanceUsage}

${gradcheckUsage}`;

const commands: Record<string, (args: string[]) => number> = {
  conformance: conformanceCommand,
  gradcheck: gradcheckCommand,
};

function main(argv: string[]): number {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    console.error(`normkit: unknown command '${name}'\n\n${usage}`);
    return 2;
  }
  try {
    return command(rest);
  } catch (error) {
    if (error instanceof NormkitError || (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      console.error(`normkit ${name}: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

process.exitCode = main(process.argv.slice(2));
