// SyncBatchNorm over WebSocket: 2, 3 and 4 rank processes with unequal shards, float32 and float64, both
// layouts, equal BatchNorm on the concatenated batch and one another's bits; a killed rank, a rank that
// never joins, a wrong token, forged, oversized and text frames, a silent rank, another layer or shape,
// a rank that throws: every other rank gets an error naming the rank, within the timeout; TLS works.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import type { Layout } from '../src/core/layout.ts';
import { NormkitError } from '../src/errors.ts';
import { BatchNorm1d } from '../src/nn/batchnorm.ts';
import { Kind, NO_LAYER, encodeFrame, encodeText } from '../src/nn/sync/frame.ts';
import { SyncBatchNorm } from '../src/nn/sync/sync-batchnorm.ts';
import { joinWebSocketGroup } from '../src/node/websocket-group.ts';
import type { WebSocketGroup } from '../src/node/websocket-group.ts';
import type { DType, Tensor } from '../src/tensor.ts';
import { Random, maxAbsDiff, randomTensor } from './helpers.ts';
import type { RankCase, RankJob, RankOutput } from './websocket-rank.ts';

const C = 3;
const L = 2;
const modes = [true, true, false];
const state = { weight: [1.5, -0.5, 2], bias: [0.1, 0.2, 0.3], running_mean: [0.5, 0, -1], running_var: [2, 1, 0.5], num_batches_tracked: 2 };
const children = new Set<ChildProcess>();
const groups = new Set<WebSocketGroup>();
const work = mkdtempSync(join(tmpdir(), 'normkit-ws-'));

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await Promise.all([...groups].map((g) => g.close()));
  rmSync(work, { recursive: true, force: true });
});

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => { resolve(port); });
    });
  });
}

interface Running {
  readonly child: ChildProcess;
  /** resolves with the process's last JSON line once it exits */
  readonly output: Promise<RankOutput>;
  /** resolves when the process prints `line` */
  printed(line: string): Promise<void>;
}

function startRanks(jobs: RankJob[], port: number): Running[] {
  const token = 'test-token-' + String(port);
  const script = fileURLToPath(new URL('./websocket-rank.ts', import.meta.url));
  return jobs.map((job, rank) => {
    const file = join(work, `job-${port}-${rank}.json`);
    writeFileSync(file, JSON.stringify(job));
    const env = { ...process.env, RANK: String(rank), WORLD_SIZE: String(jobs.length), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), NORMKIT_TOKEN: token, JOB: file };
    const child = spawn(process.execPath, ['--import', 'tsx', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    const watchers: { line: string; resolve: () => void }[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const w of watchers) if (stdout.includes(w.line)) w.resolve();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const output = new Promise<RankOutput>((resolve, reject) => {
      child.on('exit', (code, signal) => {
        children.delete(child);
        const last = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
        if (last === undefined) reject(new Error(`rank ${rank} exited (${code ?? signal}) without output: ${stderr.slice(-2000)}`));
        else resolve(JSON.parse(last) as RankOutput);
      });
    });
    const printed = (line: string): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        if (stdout.includes(line)) resolve();
        else watchers.push({ line, resolve });
        child.on('exit', () => {
          reject(new Error(`rank ${rank} exited before printing '${line}': ${stdout.slice(-1000)} ${stderr.slice(-2000)}`));
        });
      });
    return { child, output, printed };
  });
}

function rows(t: Tensor, from: number, to: number): Tensor {
  const per = t.data.length / t.shape[0];
  return { data: t.data.slice(from * per, to * per), shape: [to - from, ...t.shape.slice(1)] };
}

interface Truth {
  readonly y: ArrayLike<number>;
  readonly dx: ArrayLike<number>;
  readonly dweight: ArrayLike<number>;
  readonly dbias: ArrayLike<number>;
  readonly state: Record<string, ArrayLike<number> | number>;
}

/** The steps of one case over the whole batch, and the case each rank runs on its shard. */
function makeCase(dtype: DType, layout: Layout, bounds: readonly number[], seed: number): { truth: Truth[]; perRank: RankCase[] } {
  const random = new Random(seed);
  const n = bounds[bounds.length - 1];
  const shape = layout === 'channels-first' ? [n, C, L] : [n, L, C];
  const data = modes.map(() => ({ x: randomTensor(random, shape, dtype, 3, 2), dy: randomTensor(random, shape, dtype) }));
  const bn = new BatchNorm1d(C, { dtype, layout });
  bn.loadStateDict(state);
  const truth = data.map(({ x, dy }, k) => {
    bn.train(modes[k]);
    bn.zeroGrad();
    const y = bn.forward(x);
    const dx = bn.backward(dy);
    return { y: y.data.slice(), dx: dx.data.slice(), dweight: bn.weight!.grad.slice(), dbias: bn.bias!.grad.slice(), state: bn.stateDict() };
  });
  const perRank = bounds.slice(1).map((to, r) => ({
    dtype,
    layout,
    channels: C,
    state,
    steps: data.map(({ x, dy }, k) => ({ train: modes[k], x: Array.from(rows(x, bounds[r], to).data), dy: Array.from(rows(dy, bounds[r], to).data), shape: [...rows(x, bounds[r], to).shape] })),
  }));
  return { truth, perRank };
}

/** max |a - b| / max(1, max |b|) */
function normalized(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 1;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]));
  return maxAbsDiff(a, b) / scale;
}

const timeout = 180_000;

describe('SyncBatchNorm over WebSocket, rank processes', () => {
  const shardings = [
    [0, 3, 8],
    [0, 1, 5, 7],
    [0, 1, 5, 7, 10],
  ];
  for (const bounds of shardings) {
    const world = bounds.length - 1;
    const sizes = bounds.slice(1).map((b, r) => b - bounds[r]).join(' + ');
    it(`${world} processes (${sizes} samples): float32 and float64, both layouts, equal BatchNorm on the concatenated batch, bit-identical across ranks`, { timeout }, async () => {
      const cases = (['float64', 'float32'] as const).flatMap((dtype) => (['channels-first', 'channels-last'] as const).map((layout) => ({ dtype, layout })));
      const made = cases.map(({ dtype, layout }, i) => makeCase(dtype, layout, bounds, 100 * world + i));
      const jobs = Array.from({ length: world }, (_, r) => ({ cases: made.map((m) => m.perRank[r]), timeoutMs: 60_000 }));
      const outputs = await Promise.all(startRanks(jobs, await freePort()).map((r) => r.output));
      for (const o of outputs) assert.equal(o.error, undefined, `rank ${o.rank}: ${o.error}`);
      made.forEach(({ truth }, i) => {
        const bound = cases[i].dtype === 'float32' ? 1e-6 : 1e-12;
        truth.forEach((t, k) => {
          const label = `${cases[i].dtype} ${cases[i].layout} step ${k}`;
          const per = t.y.length / bounds[world];
          const ranks = outputs.map((o) => o.cases![i][k]);
          assert.ok(normalized(ranks.flatMap((s) => s.y), t.y) <= bound, `${label} y`);
          assert.ok(normalized(ranks.flatMap((s) => s.dx), t.dx) <= bound, `${label} dx`);
          ranks.forEach((s, r) => { assert.equal(s.y.length, (bounds[r + 1] - bounds[r]) * per); });
          const sum = (key: 'dweight' | 'dbias'): number[] => Array.from({ length: C }, (_, c) => ranks.reduce((a, s) => a + s[key][c], 0));
          assert.ok(normalized(sum('dweight'), t.dweight) <= bound, `${label} dweight`);
          assert.ok(normalized(sum('dbias'), t.dbias) <= bound, `${label} dbias`);
          for (const key of ['running_mean', 'running_var'] as const) {
            assert.ok(normalized(ranks[0].state[key] as number[], t.state[key] as ArrayLike<number>) <= bound, `${label} ${key}`);
            // the same bits on every rank
            for (const s of ranks) assert.deepEqual(s.state[key], ranks[0].state[key]);
          }
          for (const s of ranks) assert.equal(s.state.num_batches_tracked, t.state.num_batches_tracked);
        });
      });
    });
  }

  for (const killed of [2, 0]) {
    it(`a rank killed mid-step (SIGKILL rank ${killed} of 3): every other rank fails with an error naming it, state unchanged`, { timeout }, async () => {
      const { perRank } = makeCase('float64', 'channels-first', [0, 2, 4, 6], 7);
      const jobs: RankJob[] = perRank.map((c, r) => ({ cases: [{ ...c, steps: c.steps.slice(0, 1) }], timeoutMs: 30_000, ...(r === killed ? { behaviour: 'hang-after-forward' as const } : {}) }));
      const running = startRanks(jobs, await freePort());
      // the killed rank prints no result
      running[killed].output.catch(() => undefined);
      await running[killed].printed('forward done');
      const started = Date.now();
      running[killed].child.kill('SIGKILL');
      const others = await Promise.all(running.filter((_, r) => r !== killed).map((r) => r.output));
      const named = killed === 0 ? /connection to the coordinator \(rank 0\) closed/ : /rank 2 disconnected/;
      for (const o of others) {
        assert.match(o.error ?? 'no error', /NormkitError/);
        assert.match(o.error ?? '', named);
        // the forward ran, the failed backward accumulated nothing: one batch tracked
        assert.equal(o.numBatchesTracked, 3);
      }
      assert.ok(Date.now() - started < 25_000, 'within the timeout');
    });
  }
});

describe('SyncBatchNorm over WebSocket, faults in one process', () => {
  /** Joins ranks 0..world-1 in this process. */
  async function joinAll(world: number, options: { timeoutMs?: number; heartbeatMs?: number; token?: string; port?: number; tls?: { cert: string; key: string } } = {}): Promise<WebSocketGroup[]> {
    const port = options.port ?? (await freePort());
    const joined = await Promise.all(Array.from({ length: world }, (_, rank) => joinWebSocketGroup({ rank, worldSize: world, port, token: options.token ?? 'secret', timeoutMs: options.timeoutMs ?? 5000, heartbeatMs: options.heartbeatMs ?? 200, ...(options.tls === undefined ? {} : { tls: options.tls }) })));
    for (const g of joined) groups.add(g);
    return joined;
  }

  it('a rank that never joins: rank 0 fails within the timeout, naming it', { timeout: 30_000 }, async () => {
    const started = Date.now();
    await assert.rejects(joinWebSocketGroup({ rank: 0, worldSize: 3, port: await freePort(), token: 't', timeoutMs: 800 }), (e: unknown) => e instanceof NormkitError && /ranks 1, 2 did not join within 800 ms/.test(e.message));
    assert.ok(Date.now() - started < 5000);
  });

  it('a wrong token is refused; forged, text and oversized frames close that connection and leave the group working', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const rank0 = joinWebSocketGroup({ rank: 0, worldSize: 2, port, token: 'right', timeoutMs: 5000, maxValues: 16 });
    await assert.rejects(joinWebSocketGroup({ rank: 1, worldSize: 2, port, token: 'wrong', timeoutMs: 5000 }), (e: unknown) => e instanceof NormkitError && /code 1008: wrong token/.test(e.message));
    const closeCode = (send: (socket: WebSocket) => void): Promise<number> =>
      new Promise((resolve) => {
        const socket = new WebSocket(`ws://127.0.0.1:${port}`);
        socket.on('open', () => { send(socket); });
        socket.on('close', (code) => { resolve(code); });
        socket.on('error', () => undefined);
      });
    // garbage bytes, a text frame, a hello claiming another world, a frame past maxPayload
    assert.equal(await closeCode((s) => { s.send(Buffer.from('not a frame at all, just bytes')); }), 1008);
    assert.equal(await closeCode((s) => { s.send('{"hello": true}'); }), 1008);
    assert.equal(await closeCode((s) => { s.send(encodeText({ kind: Kind.hello, step: 0, layer: NO_LAYER, world: 7, rank: 1 }, 'right')); }), 1008);
    assert.equal(await closeCode((s) => { s.send(new Uint8Array(1 << 20)); }), 1009);
    // a frame whose header claims more bytes than came
    const short = encodeText({ kind: Kind.hello, step: 0, layer: NO_LAYER, world: 2, rank: 1 }, 'right');
    assert.equal(await closeCode((s) => { s.send(short.subarray(0, short.length - 2)); }), 1008);
    const rank1 = await joinWebSocketGroup({ rank: 1, worldSize: 2, port, token: 'right', timeoutMs: 5000, maxValues: 16 });
    const joined = [await rank0, rank1];
    for (const g of joined) groups.add(g);
    const values = [Float64Array.of(1, 2), Float64Array.of(10, 20)];
    await Promise.all(joined.map((g, r) => g.communicator.allReduce(values[r])));
    assert.deepEqual(values.map((v) => Array.from(v)), [[11, 22], [11, 22]]);
    await assert.rejects(joined[0].communicator.allReduce(new Float64Array(17)), /17 values exceed the group's maxValues of 16/);
  });

  it('an authenticated rank sending a forged frame fails the group, naming it', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const rank0 = joinWebSocketGroup({ rank: 0, worldSize: 2, port, token: 'k', timeoutMs: 5000, heartbeatMs: 200 });
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.on('open', resolve));
    socket.send(encodeText({ kind: Kind.hello, step: 0, layer: NO_LAYER, world: 2, rank: 1 }, 'k'));
    const group = await rank0;
    groups.add(group);
    const pending = group.communicator.allReduce(Float64Array.of(1));
    // step 5 where step 1 is due
    socket.send(encodeFrame({ kind: Kind.reduce, step: 5, layer: NO_LAYER, world: 2, rank: 1 }, new Uint8Array(8)));
    await assert.rejects(pending, (e: unknown) => e instanceof NormkitError && /rank 1 sent step 5, expected step 1/.test(e.message));
    socket.close();
  });

  it('a silent rank (no heartbeat replies) fails the group within the timeout, naming it', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const rank0 = joinWebSocketGroup({ rank: 0, worldSize: 2, port, token: 'k', timeoutMs: 1500, heartbeatMs: 100 });
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.on('open', resolve));
    socket.send(encodeText({ kind: Kind.hello, step: 0, layer: NO_LAYER, world: 2, rank: 1 }, 'k'));
    const group = await rank0;
    groups.add(group);
    const started = Date.now();
    // a step started after 1 s would time out at 2.5 s: the silence (1.5 s after the hello) is noticed first
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await assert.rejects(group.communicator.allReduce(Float64Array.of(1)), (e: unknown) => e instanceof NormkitError && /rank 1 sent nothing for \d+ ms \(heartbeat every 100 ms, timeout 1500 ms\)/.test(e.message));
    assert.ok(Date.now() - started < 5000);
    socket.close();
  });

  it('a rank calling with another layer shape, or throwing, fails every rank with an error naming it; state unchanged', { timeout: 30_000 }, async () => {
    const random = new Random(8);
    const joined = await joinAll(2);
    const layers = [new SyncBatchNorm(C, joined[0].communicator, { dtype: 'float64' }), new SyncBatchNorm(C + 1, joined[1].communicator, { dtype: 'float64' })];
    const results = await Promise.allSettled([layers[0].forward(randomTensor(random, [2, C])), layers[1].forward(randomTensor(random, [2, C + 1]))]);
    for (const r of results) assert.ok(r.status === 'rejected' && /rank 1 called all-gather for layer 0 with 9 values at step 1, rank 0 all-gather for layer 0 with 7 values|rank 0 called all-gather for layer 0 with 7 values at step 1, rank 1 all-gather for layer 0 with 9 values/.test(String(r.reason)), String(r.status === 'rejected' ? r.reason : 'resolved'));
    assert.equal(layers[0].numBatchesTracked, 0);
    assert.deepEqual(Array.from(layers[0].runningMean!), [0, 0, 0]);
    const again = await joinAll(2);
    const pair = again.map((g) => new SyncBatchNorm(C, g.communicator, { dtype: 'float64' }));
    const thrown = await Promise.allSettled([pair[0].forward(randomTensor(random, [2, C])), pair[1].forward(randomTensor(random, [2, C], 'float32'))]);
    assert.ok(thrown[0].status === 'rejected' && /rank 1 failed: SyncBatchNorm \(layer 0\): SyncBatchNorm: expected input of dtype float64, got float32/.test(String(thrown[0].reason)));
    assert.equal(pair[0].numBatchesTracked, 0);
  });

  it('TLS (wss://) with a self-signed certificate', { timeout: 60_000 }, async () => {
    const key = join(work, 'key.pem');
    const cert = join(work, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const tls = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
    const joined = await joinAll(2, { tls });
    const values = [Float64Array.of(0.5), Float64Array.of(0.25)];
    await Promise.all(joined.map((g, r) => g.communicator.allReduce(values[r])));
    assert.deepEqual(values.map((v) => v[0]), [0.75, 0.75]);
    // a client that does not trust the certificate cannot join
    const port = (await joined[0].coordinator?.listening()) ?? 0;
    await assert.rejects(joinWebSocketGroup({ rank: 1, worldSize: 2, port: port, token: 'secret', timeoutMs: 3000, tls: { cert: readFileSync(cert, 'utf8').replace(/[A-Za-z]{8}/, 'AAAAAAAA') } }), NormkitError);
  });
});
