// Measures layer deltas on real pairs: delta size against gzip -6 of the whole target layer,
// encode and decode time (base indexing shown apart; CPU seconds of all threads in brackets)
// and each side's peak RSS, each phase in a child process of its own; 'floor' is reading and
// hashing the target layer once, timed just before. Every decode is checked to give the
// target's sha256.
//
//   node dist/bench/delta-probe.js [DIR] [pair...]     DIR: /work/data/delta-pairs by default
//   (the pairs' layer tars come from ../shared/delta/make-pairs.sh DIR)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { decodeLayerDelta, encodeLayerDelta, SpooledBase } from '../src/delta/index.js';
import type { Digest } from '../src/util/digest.js';

const PAIRS: Record<string, { base: string[]; target: string; note: string }> = {
  rebuilt: { base: ['A.tar'], target: 'B.tar', note: 'rebuilt base, only mtimes differ' },
  security: { base: ['A.tar'], target: 'B3.tar', note: 'rebuilt + security updates' },
  package: { base: ['A.tar'], target: 'B2.tar', note: 'rebuilt + python3-minimal' },
  app: { base: ['A.tar', 'app-old.tar'], target: 'app-new.tar', note: 'app layer, 5 % of files edited' },
};

async function sha256File(path: string): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** sha256 and gzip -6 size of a layer tar, cached next to the probe's temp files. */
async function facts(dir: string, name: string): Promise<{ digest: Digest; gzip: number }> {
  const path = join(dir, name);
  const cache = join(tmpdir(), `delta-probe-${name}-${statSync(path).size}-${statSync(path).mtimeMs}.json`);
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, 'utf8')) as { digest: Digest; gzip: number };
  let gzip = 0;
  const counter = createWriteStream('/dev/null');
  const gz = createGzip({ level: 6 });
  gz.on('data', (chunk: Buffer) => {
    gzip += chunk.length;
  });
  await pipeline(createReadStream(path), gz, counter);
  const result = { digest: await sha256File(path), gzip };
  writeFileSync(cache, JSON.stringify(result));
  return result;
}

/** CPU seconds (all threads) since `from`: the measure that survives a busy machine. */
function cpuSeconds(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
}

/** One phase in this process (called as a child): prints its timings and peak RSS as JSON. */
async function phase(kind: 'encode' | 'decode', dir: string, pair: string, deltaPath: string): Promise<void> {
  const { base, target } = PAIRS[pair]!;
  const work = await mkdtemp(join(tmpdir(), 'delta-probe-'));
  const spool = await SpooledBase.create(work);
  try {
    let t = performance.now();
    let cpu = process.cpuUsage();
    for (const layer of base) {
      const { digest } = await facts(dir, layer);
      await spool.addLayerFile(digest, join(dir, layer), { hash: false });
    }
    const index = (performance.now() - t) / 1000;
    const indexCpu = cpuSeconds(cpu);
    t = performance.now();
    cpu = process.cpuUsage();
    let result: object;
    if (kind === 'encode') {
      const stats = await encodeLayerDelta(createReadStream(join(dir, target)), spool, createWriteStream(deltaPath));
      result = { ...stats };
    } else {
      result = await decodeLayerDelta(createReadStream(deltaPath), spool, createWriteStream('/dev/null'));
    }
    const seconds = (performance.now() - t) / 1000;
    const cpuTime = cpuSeconds(cpu);
    const floorHash = createHash('sha256');
    const maxRss = process.resourceUsage().maxRSS * 1024;
    // The floor on this machine at this moment: reading the layer and hashing it once.
    t = performance.now();
    for await (const chunk of createReadStream(join(dir, target))) floorHash.update(chunk as Buffer);
    const floor = (performance.now() - t) / 1000;
    process.stdout.write(`${JSON.stringify({ floor, index, indexCpu, seconds, cpu: cpuTime, maxRss, ...result })}\n`);
  } finally {
    await spool.close();
    await rm(work, { recursive: true, force: true });
  }
}

function child(kind: string, dir: string, pair: string, deltaPath: string): Record<string, number | string | object> {
  const out = execFileSync(process.execPath, [process.argv[1]!, '--phase', kind, dir, pair, deltaPath], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, number | string | object>;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--phase') return phase(args[1] as 'encode' | 'decode', args[2]!, args[3]!, args[4]!);
  const dir = args[0] ?? '/work/data/delta-pairs';
  const pairs = args.length > 1 ? args.slice(1) : Object.keys(PAIRS);
  const work = await mkdtemp(join(tmpdir(), 'delta-probe-'));
  const mb = (n: number): string => (n / 1e6).toFixed(3);
  console.log(
    '| pair | layer MB | gzip -6 MB | delta MB | ratio | ref/delta/lit files | index s (cpu) | encode s (cpu) | decode s (cpu) | s per 100 MB enc/dec | floor s | RSS enc/dec MB |',
  );
  console.log('|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---|');
  try {
    for (const pair of pairs) {
      const { target, note } = PAIRS[pair]!;
      for (const layer of [...PAIRS[pair]!.base, target]) await facts(dir, layer);
      const { digest, gzip } = await facts(dir, target);
      const deltaPath = join(work, `${pair}.delta`);
      const enc = child('encode', dir, pair, deltaPath);
      const dec = child('decode', dir, pair, deltaPath);
      if (enc.digest !== digest || dec.digest !== digest) throw new Error(`${pair}: delta does not rebuild ${digest}`);
      const size = statSync(deltaPath).size;
      const files = enc.files as { referenced: number; deltified: number; literal: number };
      const layerSize = statSync(join(dir, target)).size;
      const s = (phase: Record<string, unknown>, key: string): string => (phase[key] as number).toFixed(2);
      const per100 = (phase: Record<string, unknown>): string => (((phase.seconds as number) * 100e6) / layerSize).toFixed(2);
      console.log(
        `| ${pair} (${note}) | ${mb(layerSize)} | ${mb(gzip)} | ${mb(size)} | 1/${(gzip / size).toFixed(1)} | ` +
          `${files.referenced}/${files.deltified}/${files.literal} | ${s(enc, 'index')} (${s(enc, 'indexCpu')}) | ` +
          `${s(enc, 'seconds')} (${s(enc, 'cpu')}) | ${s(dec, 'seconds')} (${s(dec, 'cpu')}) | ${per100(enc)}/${per100(dec)} | ${s(enc, 'floor')} | ` +
          `${((enc.maxRss as number) / 1e6).toFixed(0)}/${((dec.maxRss as number) / 1e6).toFixed(0)} |`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
