/**
 * Files the commands read and write, checked first: a bad path fails at once with one line rather than
 * with a stack trace, or after minutes of training or timing.
 */
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { NormkitError } from '../index.js';

function reason(error: unknown): string {
  return error instanceof Error && 'code' in error ? String(error.code) : String(error);
}

/**
 * Creates `dir` and its missing parents one level at a time (Node's recursive mkdir spins on /proc),
 * and checks the result is a writable directory.
 */
export function ensureOutputDir(dir: string, option: string): void {
  const path = resolve(dir);
  const missing: string[] = [];
  let existing = path;
  for (;;) {
    try {
      statSync(existing);
      break;
    } catch {
      missing.unshift(existing);
      const parent = dirname(existing);
      if (parent === existing) break;
      existing = parent;
    }
  }
  try {
    if (!statSync(existing).isDirectory()) throw new NormkitError('option', `${option} ${dir}: ${existing} is not a directory`);
    for (const part of missing) mkdirSync(part);
    accessSync(path, constants.W_OK);
  } catch (error) {
    if (error instanceof NormkitError) throw error;
    throw new NormkitError('option', `${option} ${dir}: cannot write there (${reason(error)})`);
  }
}

/** Checks that `file` can be written, leaving no file behind where there was none. */
export function ensureOutputFile(file: string, option: string): void {
  try {
    const existed = existsSync(file);
    if (existed && statSync(file).isDirectory()) throw new NormkitError('option', `${option} ${file}: is a directory`);
    closeSync(openSync(file, existed ? 'r+' : 'wx'));
    if (!existed) unlinkSync(file);
  } catch (error) {
    if (error instanceof NormkitError) throw error;
    throw new NormkitError('option', `${option} ${file}: cannot write there (${reason(error)})`);
  }
}

/** The text of an input file, or a NormkitError naming what is wrong with the path. */
export function readTextFile(file: string): string {
  const stat = statSync(file, { throwIfNoEntry: false });
  if (stat === undefined) throw new NormkitError('option', `${file}: no such file`);
  if (stat.isDirectory()) throw new NormkitError('option', `${file}: is a directory, expected a file`);
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new NormkitError('option', `${file}: cannot read it (${reason(error)})`);
  }
}
