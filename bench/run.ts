/**
 * `npm run bench`: ddiff against baselines measured in the same run, on generated image pairs.
 *
 *   DDIFF_BENCH_SIZES=40,400,2000   base sizes in MB (default)
 *   DDIFF_BENCH_ENGINE_MAX=400      largest base size also run through Docker (when it answers)
 *   DDIFF_BENCH_DIR=/path           scratch directory (default: the system temp dir)
 *
 *   DDIFF_BENCH_REPEAT=3            runs of each step; the median counts
 *
 * Every ratio compares two commands run here, one after the other, on the same bytes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseSpecs, deltaSpecs, generateLayer, writeDockerArchive, type GeneratedLayer } from './generate.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', 'src', 'cli.js');
const probe = join(here, 'probe.js');
const MB = 1_000_000;

interface Measure {
  wall: number;
  cpu?: number;
  maxRss?: number;
  read?: number;
  written?: number;
}

interface Row {
  size: string;
  step: string;
  m: Measure;
  bundle?: number;
  baseline?: string;
  ratio?: number;
  target?: string;
}

const rows: Row[] = [];

function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv } = {},
): Promise<{ stdout: string; stderr: string; wall: number; code: number }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      resolve({ stdout, stderr, wall, code: code ?? -1 });
    });
  });
}

/** Runs ddiff with the probe preloaded: wall, CPU, peak RSS and bytes read/written. */
async function ddiff(args: string[]): Promise<Measure & { stdout: string }> {
  const r = await run(process.execPath, ['--import', probe, cli, '-q', ...args]);
  if (r.code !== 0) throw new Error(`ddiff ${args.join(' ')} failed: ${r.stderr}`);
  const match = /ddiff-probe=(\{.*\})/.exec(r.stderr);
  const p = match ? (JSON.parse(match[1]!) as { maxRss: number; cpu: number; rchar: number; wchar: number }) : undefined;
  return { wall: r.wall, cpu: p?.cpu, maxRss: p?.maxRss, read: p?.rchar, written: p?.wchar, stdout: r.stdout };
}

/** Runs a shell command line; CPU time of its children from bash's `times`. */
async function shell(line: string): Promise<Measure> {
  const r = await run('bash', ['-c', `${line}\ntimes >&2`]);
  if (r.code !== 0) throw new Error(`${line} failed: ${r.stderr}`);
  const times = r.stderr.trim().split('\n').at(-1) ?? '';
  const secs = [...times.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { wall: r.wall, cpu: secs.length === 2 ? secs[0]! + secs[1]! : undefined };
}

/**
 * Repeats a measurement and keeps the median run: this machine's timings are noisy, and Docker's
 * (vfs) load times swing both ways, so neither the fastest nor one run is representative.
 */
const REPEAT = Number(process.env.DDIFF_BENCH_REPEAT ?? 3);
async function median<T extends Measure>(measureOnce: () => Promise<T>, before?: () => Promise<unknown>): Promise<T> {
  const runs: T[] = [];
  for (let i = 0; i < REPEAT; i++) {
    if (before) await before();
    runs.push(await measureOnce());
  }
  runs.sort((a, b) => a.wall - b.wall);
  return runs[Math.floor((runs.length - 1) / 2)]!;
}

/** Runs two measurements alternately (so both see the same machine state) and keeps each median. */
async function interleaved<A extends Measure, B extends Measure>(
  a: () => Promise<A>,
  b: () => Promise<B>,
  before?: () => Promise<unknown>,
): Promise<[A, B]> {
  const as: A[] = [];
  const bs: B[] = [];
  for (let i = 0; i < REPEAT; i++) {
    if (before) await before();
    as.push(await a());
    if (before) await before();
    bs.push(await b());
  }
  const mid = <T extends Measure>(runs: T[]) => runs.sort((x, y) => x.wall - y.wall)[Math.floor((runs.length - 1) / 2)]!;
  return [mid(as), mid(bs)];
}

function dockerAnswers(): boolean {
  return spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore' }).status === 0;
}

function fmt(n: number | undefined, digits = 2): string {
  return n === undefined ? '-' : n.toFixed(digits);
}

function record(row: Row): void {
  rows.push(row);
  const m = row.m;
  process.stderr.write(
    `  ${row.size.padEnd(8)} ${row.step.padEnd(40)} ${fmt(m.wall)}s cpu ${fmt(m.cpu)}s rss ${fmt(m.maxRss && m.maxRss / MB, 0)}MB${row.ratio === undefined ? '' : ` ratio ${fmt(row.ratio)}`}\n`,
  );
}

async function scenario(dir: string, sizeMb: number, deltaMb: number, engineMax: number, label = `${sizeMb}MB`): Promise<number> {
  process.stderr.write(`\n[${label}] generating a ${sizeMb} MB base and a ${deltaMb} MB delta in ${dir}\n`);
  const base: GeneratedLayer[] = [];
  for (const [i, spec] of baseSpecs(sizeMb * MB, 1).entries()) base.push(await generateLayer(join(dir, `base-${i}.tar`), spec));
  const delta: GeneratedLayer[] = [];
  for (const [i, spec] of deltaSpecs(deltaMb * MB, 2).entries()) delta.push(await generateLayer(join(dir, `delta-${i}.tar`), spec));
  const tagBase = `ddiff-bench/base-${sizeMb}:1`;
  const tagTarget = `ddiff-bench/app-${sizeMb}-${deltaMb}:1`;
  await writeDockerArchive(join(dir, 'base.tar'), tagBase, base);
  const targetId = await writeDockerArchive(join(dir, 'target.tar'), tagTarget, [...base, ...delta]);
  const newBytes = delta.reduce((n, l) => n + l.size, 0);
  const deltaFiles = delta.map((l) => l.file).join(' ');

  const gzipBase = await median(() => shell(`gzip -6 -c ${deltaFiles} > /dev/null`));
  const gzipSize = Number(spawnSync('bash', ['-c', `gzip -6 -c ${deltaFiles} | wc -c`], { encoding: 'utf8' }).stdout.trim());
  record({ size: label, step: 'baseline: gzip -6 of the new layers', m: gzipBase, bundle: gzipSize });

  const bundle = join(dir, 'app.ddiff');
  const diff = await median(() => ddiff(['diff', join(dir, 'base.tar'), join(dir, 'target.tar'), '-o', bundle]));
  const bundleSize = (await stat(bundle)).size;
  record({
    size: label,
    step: 'diff archives (gzip)',
    m: diff,
    bundle: bundleSize,
    baseline: 'gzip -6 of new layers',
    ratio: diff.wall / gzipBase.wall,
    target: '≤ 1.0',
  });
  record({
    size: label,
    step: 'bundle size / gzip -6 size',
    m: { wall: 0 },
    bundle: bundleSize,
    baseline: 'gzip -6 size',
    ratio: bundleSize / gzipSize,
    target: '≤ 1.01',
  });

  const zstdBundle = join(dir, 'app-zstd.ddiff');
  const zdiff = await median(() => ddiff(['diff', '--compress', 'zstd', join(dir, 'base.tar'), join(dir, 'target.tar'), '-o', zstdBundle]));
  const zstdSize = (await stat(zstdBundle)).size;
  record({
    size: label,
    step: 'diff archives (zstd)',
    m: zdiff,
    bundle: zstdSize,
    baseline: 'diff (gzip)',
    ratio: zdiff.wall / diff.wall,
    target: '< 1 (faster), size < gzip',
  });
  record({
    size: label,
    step: 'zstd bundle size / gzip bundle size',
    m: { wall: 0 },
    bundle: zstdSize,
    baseline: 'gzip bundle',
    ratio: zstdSize / bundleSize,
    target: '< 1',
  });
  await rm(zstdBundle);

  const out = join(dir, 'rebuilt.tar');
  const loadOut = await median(() => ddiff(['load', bundle, '--base', join(dir, 'base.tar'), '-o', out]));
  const cp = await median(() => shell(`cp ${join(dir, 'target.tar')} ${join(dir, 'copy.tar')}`));
  record({
    size: label,
    step: 'load -o (rebuild from base archive)',
    m: loadOut,
    baseline: 'cp of the target archive',
    ratio: loadOut.wall / cp.wall,
  });
  await rm(out);
  await rm(join(dir, 'copy.tar'));

  if (sizeMb <= engineMax && dockerAnswers()) {
    await engineSteps(dir, label, { tagBase, tagTarget, targetId, base, delta, gzipWall: gzipBase.wall });
  } else if (sizeMb <= engineMax) {
    process.stderr.write('  (docker does not answer: engine steps skipped)\n');
  }
  for (const l of [...base, ...delta]) await rm(l.file, { force: true });
  await rm(join(dir, 'base.tar'), { force: true });
  await rm(join(dir, 'target.tar'), { force: true });
  await rm(bundle, { force: true });
  void newBytes;
  return diff.wall;
}

async function engineSteps(
  dir: string,
  label: string,
  s: { tagBase: string; tagTarget: string; targetId: string; base: GeneratedLayer[]; delta: GeneratedLayer[]; gzipWall: number },
): Promise<void> {
  const docker = (args: string) => shell(`docker ${args}`);
  const rmiTarget = () => shell(`docker rmi -f ${s.tagTarget} >/dev/null 2>&1 || true`);
  await docker(`load -q -i ${join(dir, 'base.tar')} >/dev/null`);
  await docker(`load -q -i ${join(dir, 'target.tar')} >/dev/null`);
  try {
    const bundle = join(dir, 'engine.ddiff');
    const [save, diff] = await interleaved(
      () => shell(`docker save ${s.tagTarget} > /dev/null`),
      () => ddiff(['diff', '--engine', 'docker', s.tagBase, s.tagTarget, '-o', bundle]),
    );
    const baselineWall = save.wall + s.gzipWall;
    record({
      size: label,
      step: 'diff engine refs',
      m: diff,
      baseline: 'docker save >/dev/null + gzip',
      ratio: diff.wall / baselineWall,
      target: '≤ 1.1',
    });

    const partial = join(dir, 'new-only.tar');
    await writeDockerArchive(partial, s.tagTarget, [...s.base, ...s.delta], new Set(s.delta.map((l) => l.diffId)));
    const [loadNew, fast] = await interleaved(
      () => docker(`load -q -i ${partial} >/dev/null`),
      () => ddiff(['load', '--json', bundle, '--engine', 'docker']),
      rmiTarget,
    );
    const fastMode = (JSON.parse(fast.stdout) as { mode: string }).mode;
    record({
      size: label,
      step: `load → docker (${fastMode})`,
      m: fast,
      baseline: 'docker load of new layers only',
      ratio: fast.wall / loadNew.wall,
      target: '≤ 1.2',
    });
    const [loadFull, full] = await interleaved(
      () => docker(`load -q -i ${join(dir, 'target.tar')} >/dev/null`),
      () => ddiff(['load', '--json', '--no-fast-path', bundle, '--engine', 'docker']),
      rmiTarget,
    );
    record({
      size: label,
      step: 'load → docker (full rebuild)',
      m: full,
      baseline: 'docker load of the full target',
      ratio: full.wall / loadFull.wall,
      target: '≤ 1.1',
    });
    const id = spawnSync('docker', ['image', 'inspect', '--format', '{{.Id}}', s.tagTarget], { encoding: 'utf8' }).stdout.trim();
    if (id !== s.targetId) throw new Error(`engine round trip gave ${id}, expected ${s.targetId}`);
    await rm(partial, { force: true });
    await rm(bundle, { force: true });
  } finally {
    await shell(`docker rmi -f ${s.tagTarget} ${s.tagBase} >/dev/null 2>&1 || true`);
  }
}

function table(): string {
  const head = '| base | step | wall s | cpu s | peak RSS MB | read MB | written MB | bundle MB | baseline | ratio | target |';
  const lines = [head, '|---|---|--:|--:|--:|--:|--:|--:|---|--:|---|'];
  for (const r of rows) {
    const m = r.m;
    lines.push(
      `| ${r.size} | ${r.step} | ${m.wall ? fmt(m.wall) : ''} | ${fmt(m.cpu)} | ${fmt(m.maxRss && m.maxRss / MB, 0)} | ${fmt(m.read && m.read / MB, 0)} | ${fmt(m.written && m.written / MB, 0)} | ${fmt(r.bundle && r.bundle / MB, 3)} | ${r.baseline ?? ''} | ${fmt(r.ratio)} | ${r.target ?? ''} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const sizes = (process.env.DDIFF_BENCH_SIZES ?? '40,400,2000')
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
  const engineMax = Number(process.env.DDIFF_BENCH_ENGINE_MAX ?? 400);
  const dir = await mkdtemp(join(process.env.DDIFF_BENCH_DIR ?? tmpdir(), 'ddiff-bench-'));
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const machine = `${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`;
  process.stderr.write(`ddiff bench on ${machine}\n`);
  if (!dockerAnswers()) process.stderr.write('docker does not answer (set DOCKER_HOST): engine steps are skipped\n');
  try {
    const walls = new Map<number, number>();
    for (const size of sizes) walls.set(size, await scenario(dir, size, Math.max(2, Math.round(size * 0.1)), engineMax));
    const smallest = Math.min(...sizes);
    const largest = Math.max(...sizes);
    if (largest > smallest) {
      // Same delta as the smallest base, on the largest base: base size should add only metadata.
      const deltaMb = Math.max(2, Math.round(smallest * 0.1));
      const wall = await scenario(dir, largest, deltaMb, 0, `${largest}MB/δ${deltaMb}`);
      record({
        size: `${largest}MB/δ${deltaMb}`,
        step: `diff time vs ${smallest}MB base, same delta`,
        m: { wall: 0 },
        baseline: `diff on ${smallest}MB base`,
        ratio: wall / walls.get(smallest)!,
        target: '≤ 1.1',
      });
    }
    const result = `Machine: ${machine}\n\n${table()}\n`;
    process.stdout.write(`\n${result}`);
    await writeFile(
      join(here, '..', '..', 'bench', 'RESULTS.md'),
      `# ddiff bench results\n\nProduced by \`npm run bench\` (${new Date().toISOString()}).\n\n${result}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
