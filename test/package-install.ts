// The packed tarball installed as a user installs it: `npm pack`, then `npm ci --offline` in a new project whose
// lockfile pins normkit's dependencies to the versions in this repository's lockfile (npm ci put their tarballs in
// the npm cache), so the install needs no network and no registry metadata.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment without what the `npm test` running this says about the checkout (its package, its folder). */
const userEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_(package_|lifecycle_|config_local_prefix$)/i.test(name)));

/** Runs a command to its end without blocking the event loop (checks run side by side). */
export function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = userEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      resolve({ status, stdout, stderr });
    });
  });
}

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  dev?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  [key: string]: unknown;
}

interface Lock {
  packages: Record<string, LockEntry>;
}

/** Where Node finds `name` from the package at `from` (a lockfile path): the nearest node_modules up the tree. */
function resolveIn(packages: Lock['packages'], from: string, name: string): string | null {
  for (let at = from; ; ) {
    const candidate = `${at === '' ? '' : `${at}/`}node_modules/${name}`;
    if (candidate in packages) return candidate;
    if (at === '') return null;
    at = at.slice(0, at.lastIndexOf('node_modules/')).replace(/\/$/, '');
  }
}

/** The lockfile entries a project with these dependencies installs, copied from this repository's lockfile. */
function closure(lock: Lock, names: readonly string[]): Record<string, LockEntry> {
  const entries: Record<string, LockEntry> = {};
  const visit = (from: string, name: string, optional: boolean): void => {
    const path = resolveIn(lock.packages, from, name);
    if (path === null) {
      if (optional) return;
      throw new Error(`package-lock.json has no entry for ${name} (needed from '${from}')`);
    }
    if (path in entries) return;
    const { dev, devOptional, peer, ...entry } = lock.packages[path];
    const base = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    // entries hold no tarball address where the registry's is meant: write it, so npm ci reads the cache by integrity
    entries[path] = { ...entry, resolved: entry.resolved ?? `https://registry.npmjs.org/${base}/-/${base.split('/').pop() ?? base}-${entry.version ?? ''}.tgz` };
    for (const dep of Object.keys(entry.dependencies ?? {})) visit(path, dep, false);
    for (const dep of Object.keys(entry.optionalDependencies ?? {})) visit(path, dep, true);
    for (const dep of Object.keys(entry.peerDependencies ?? {})) visit(path, dep, entry.peerDependenciesMeta?.[dep]?.optional === true);
  };
  for (const name of names) visit('', name, false);
  return entries;
}

/** The fields of normkit's package.json its lockfile entry repeats. */
interface Manifest {
  readonly version: string;
  readonly dependencies: Record<string, string>;
  readonly peerDependencies: Record<string, string>;
  readonly peerDependenciesMeta: Record<string, { optional?: boolean }>;
  readonly bin: Record<string, string>;
  readonly engines: Record<string, string>;
}

export interface Installed {
  /** The temporary folder holding the tarball and the project. */
  readonly dir: string;
  /** The consumer project: package.json, node_modules with normkit and its dependencies (no webgpu). */
  readonly app: string;
  readonly tarball: string;
}

/** Packs the built package and installs the tarball with @types/node into a new project; throws saying why where it cannot. */
export async function installPacked(): Promise<Installed> {
  if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run npm run build first (npm test does)');
  const dir = mkdtempSync(join(tmpdir(), 'normkit-package-'));
  const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root);
  if (pack.status !== 0) throw new Error(`npm pack failed:\n${pack.stderr}`);
  const [{ filename }] = JSON.parse(pack.stdout) as [{ filename: string }];
  const tarball = join(dir, filename);
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as Lock;
  const typesNode = lock.packages['node_modules/@types/node'].version ?? '';
  const app = join(dir, 'app');
  mkdirSync(app);
  const dependencies = { normkit: `file:../${filename}`, '@types/node': typesNode };
  writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'normkit-consumer', private: true, type: 'module', dependencies }, null, 2)}\n`);
  const normkit: LockEntry = {
    version: manifest.version,
    resolved: `file:../${filename}`,
    integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
    dependencies: manifest.dependencies,
    peerDependencies: manifest.peerDependencies,
    peerDependenciesMeta: manifest.peerDependenciesMeta,
    bin: manifest.bin,
    engines: manifest.engines,
  };
  const packages = { '': { name: 'normkit-consumer', dependencies }, 'node_modules/normkit': normkit, ...closure(lock, [...Object.keys(manifest.dependencies), '@types/node']) };
  writeFileSync(join(app, 'package-lock.json'), `${JSON.stringify({ name: 'normkit-consumer', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
  const install = await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], app);
  if (install.status !== 0) throw new Error(`npm ci --offline of the packed tarball failed (are normkit's dependencies in the npm cache? npm ci in the checkout puts them there):\n${install.stderr}`);
  return { dir, app, tarball };
}
