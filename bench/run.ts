/**
 * `npm run bench`: ddiff against baselines measured in the same run, on generated image pairs and
 * (issue 10) on real Debian image pairs.
 *
 *   npm run bench                   generated pairs, then the real pairs when their images are in Docker
 *   npm run bench -- --real         also build the real pairs' images if missing (make-images.sh; minutes)
 *   npm run bench -- --real-only    only the real pairs (building them if missing)
 *   npm run bench -- --no-real      only the generated pairs (and the delta pairs)
 *   npm run bench -- --no-real --delta-only   only the delta pairs (issue 11; ../data/delta-pairs,
 *                                   DDIFF_BENCH_DELTA_DIR; made by ../shared/delta/make-pairs.sh)
 *
 *   DDIFF_BENCH_SIZES=40,400,2000   generated base sizes in MB (default; empty: none)
 *   DDIFF_BENCH_ENGINE_MAX=400      largest generated base also run through Docker (when it answers)
 *   DDIFF_BENCH_DIR=/path           scratch directory (default: the system temp dir)
 *   DDIFF_BENCH_REPEAT=3            runs of each step; the median counts
 *
 *   DDIFF_BENCH_REAL=auto|build|off real pairs: when present (default), build if missing (= --real), never
 *   DDIFF_BENCH_REAL_PAIRS=small,large
 *   DDIFF_BENCH_REAL_DIR=/path      make-images.sh's WORKDIR, archives in WORKDIR/archives
 *                                   (default: ../data/real-images next to the repo)
 *   DDIFF_BENCH_REAL_SCRIPT=/path   default: ../shared/real-images/make-images.sh next to the repo
 *
 *   DDIFF_BENCH_RESULTS=/path       where the results go (default bench/RESULTS.md)
 *   DDIFF_BENCH_COMMIT=abc1234      the commit to name as measured (a tree exported with git archive)
 *
 * Every ratio compares two commands run here, one after the other, on the same bytes. Results go
 * to stdout and bench/RESULTS.md: the sections measured in this run are replaced, the others (and
 * anything after the notes marker) are kept.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseSpecs, deltaSpecs, generateLayer, writeDockerArchive, type GeneratedLayer } from './generate.js';
import { ddiff, dockerAnswers, interleaved, median, MB, type Row, record, rows, shell, table, verdict } from './measure.js';
import { deltaPairsBench } from './delta-pairs.js';
import { freshLoadOutputs, layerBlobs, loadBound, REAL_PAIRS, realImagesBench, recordLoadBound } from './real-images.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository (this file runs as dist/bench/run.js). */
const repo = join(here, '..', '..');

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
  const zstdBase = await median(() => shell(`zstd -3 -T0 -q -c ${deltaFiles} > /dev/null`));
  const zstdFloorSize = Number(spawnSync('bash', ['-c', `zstd -3 -T0 -q -c ${deltaFiles} | wc -c`], { encoding: 'utf8' }).stdout.trim());
  record({ size: label, step: 'baseline: zstd -3 -T0 of the new layers', m: zstdBase, bundle: zstdFloorSize });

  const bundle = join(dir, 'app.ddiff');
  const diff = await median(() => ddiff(['diff', '--compress', 'gzip', join(dir, 'base.tar'), join(dir, 'target.tar'), '-o', bundle]));
  const bundleSize = (await stat(bundle)).size;
  record({
    size: label,
    step: 'diff archives (gzip)',
    m: diff,
    bundle: bundleSize,
    baseline: 'gzip -6 of new layers',
    baselineWall: gzipBase.wall,
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
  const zdiff = await median(() =>
    ddiff(['diff', '--json', '--compress', 'zstd', join(dir, 'base.tar'), join(dir, 'target.tar'), '-o', zstdBundle]),
  );
  const zstdSize = (await stat(zstdBundle)).size;
  record({
    size: label,
    step: 'diff archives (zstd)',
    m: zdiff,
    bundle: zstdSize,
    baseline: 'zstd -3 -T0 of new layers',
    baselineWall: zstdBase.wall,
    ratio: zdiff.wall / zstdBase.wall,
    target: '≤ 1.1',
  });
  record({
    size: label,
    step: 'zstd bundle size / gzip -6 size',
    m: { wall: 0 },
    bundle: zstdSize,
    baseline: 'gzip -6 size',
    ratio: zstdSize / gzipSize,
    target: '≤ 0.96',
  });

  // load -o of the default (zstd) bundle, and the tools' bound (the same job by zstd, tee, openssl).
  const out = join(dir, 'rebuilt.tar');
  const fresh = freshLoadOutputs(dir, out, join(dir, 'copy.tar'));
  const [cp, loadOut] = await interleaved(
    () => shell(`cp ${join(dir, 'target.tar')} ${join(dir, 'copy.tar')}`),
    () => ddiff(['load', zstdBundle, '--base', join(dir, 'base.tar'), '-o', out]),
    fresh,
  );
  const tools = await median(() => shell(loadBound(zstdBundle, layerBlobs(zdiff.stdout), join(dir, 'base.tar'), dir)), fresh);
  const atTwoGb = sizeMb >= 2000;
  record({
    size: label,
    step: 'load -o (rebuild from base archive)',
    m: loadOut,
    baseline: 'cp of the target archive',
    baselineWall: cp.wall,
    ratio: loadOut.wall / cp.wall,
    ...(atTwoGb ? { target: '≤ 2', accept: 'load -o ≤ 2× cp (at 2 GB)' } : {}),
  });
  recordLoadBound(label, tools, cp, atTwoGb ? { target: '≤ 2', bounds: 'load -o ≤ 2× cp (at 2 GB)' } : {});
  await fresh();
  await rm(zstdBundle);

  if (sizeMb <= engineMax && dockerAnswers()) {
    await engineSteps(dir, label, { tagBase, tagTarget, targetId, base, delta, zstdWall: zstdBase.wall });
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
  s: { tagBase: string; tagTarget: string; targetId: string; base: GeneratedLayer[]; delta: GeneratedLayer[]; zstdWall: number },
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
    const baselineWall = save.wall + s.zstdWall;
    record({
      size: label,
      step: 'diff engine refs',
      m: diff,
      baseline: 'docker save >/dev/null + zstd -3 -T0',
      baselineWall,
      ratio: diff.wall / baselineWall,
      target: '≤ 1.15',
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
      baselineWall: loadNew.wall,
      ratio: fast.wall / loadNew.wall,
      target: '≤ 1.15',
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
      baselineWall: loadFull.wall,
      ratio: full.wall / loadFull.wall,
      target: '≤ 1.2',
    });
    const id = spawnSync('docker', ['image', 'inspect', '--format', '{{.Id}}', s.tagTarget], { encoding: 'utf8' }).stdout.trim();
    if (id !== s.targetId) throw new Error(`engine round trip gave ${id}, expected ${s.targetId}`);
    await rm(partial, { force: true });
    await rm(bundle, { force: true });
  } finally {
    await shell(`docker rmi -f ${s.tagTarget} ${s.tagBase} >/dev/null 2>&1 || true`);
  }
}

/**
 * The acceptance lines of issue 10 with each real pair's ratio and verdict, and the generated
 * 2 GB pair's (load -o is judged at 2 GB).
 */
function acceptance(): string {
  const real = rows.filter((r) => r.accept && (r.size.startsWith('real ') || r.size === '2000MB'));
  const pairs = [...new Set(real.map((r) => r.size))];
  const lines = [`| acceptance (issue 10) | ${pairs.join(' | ')} |`, `|---|${pairs.map(() => '--:|').join('')}`];
  for (const accept of [...new Set(real.map((r) => r.accept!))]) {
    const cells = pairs.map((pair) => {
      const r = real.find((x) => x.accept === accept && x.size === pair);
      const b = rows.find((x) => x.bounds === accept && x.size === pair && !x.note);
      const bound = b ? ` (tools' bound ${b.ratio?.toFixed(2) ?? '-'}${verdict(b) === 'miss' ? ', the tools miss too' : ''})` : '';
      return r ? `${r.ratio?.toFixed(2) ?? '-'} ${verdict(r)}${bound}` : '-';
    });
    lines.push(`| ${accept} | ${cells.join(' | ')} |`);
  }
  const peaks = pairs.map((pair) =>
    Math.max(0, ...rows.filter((r) => r.size === pair && r.m.maxRss !== undefined).map((r) => r.m.maxRss!)),
  );
  if (peaks.some((p) => p > 0)) {
    lines.push(
      `| peak RSS ≤ 150 MB (any ddiff step) | ${peaks.map((p) => `${(p / MB).toFixed(0)} MB ${p <= 150 * MB ? 'hold' : 'miss'}`).join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

function measuredAt(): string {
  const git = (args: string[]) => spawnSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).stdout.trim();
  const pinned = process.env.DDIFF_BENCH_COMMIT;
  const commit = pinned ?? git(['rev-parse', '--short', 'HEAD']);
  const dirty = pinned ? '' : git(['status', '--porcelain', '--', 'src']);
  return `${new Date().toISOString()}, commit ${commit}${dirty ? ' plus uncommitted changes in src/' : ''}`;
}

const NOTES = '<!-- notes: everything below is written by hand and kept by npm run bench -->';

/** Replaces the sections measured now in bench/RESULTS.md; keeps the others and the hand-written notes. */
async function writeResults(sections: Map<string, string>): Promise<void> {
  const file = process.env.DDIFF_BENCH_RESULTS ?? join(repo, 'bench', 'RESULTS.md');
  const old = existsSync(file) ? await readFile(file, 'utf8') : '';
  const notesAt = old.indexOf(NOTES);
  const notes = notesAt >= 0 ? old.slice(notesAt) : NOTES;
  const body = notesAt >= 0 ? old.slice(0, notesAt) : old;
  const kept = new Map<string, string>();
  for (const m of body.matchAll(/<!-- bench:(\w+) -->\n([\s\S]*?)<!-- \/bench:\1 -->/g)) kept.set(m[1]!, m[2]!);
  for (const [name, text] of sections) kept.set(name, text);
  const order = ['real', 'synthetic', ...[...kept.keys()].filter((k) => k !== 'real' && k !== 'synthetic')];
  const parts = order.filter((k) => kept.has(k)).map((k) => `<!-- bench:${k} -->\n${kept.get(k)!.trimEnd()}\n<!-- /bench:${k} -->`);
  await writeFile(
    file,
    `# ddiff bench results\n\nProduced by \`npm run bench\`; see bench/run.ts.\n\n${parts.join('\n\n')}\n\n${notes.trimEnd()}\n`,
  );
}

function realMode(argv: string[]): { real: 'auto' | 'build' | 'off'; realOnly: boolean } {
  const realOnly = argv.includes('--real-only');
  let real = (process.env.DDIFF_BENCH_REAL ?? 'auto') as 'auto' | 'build' | 'off';
  if (argv.includes('--real') || realOnly) real = 'build';
  if (argv.includes('--no-real')) real = 'off';
  return { real, realOnly };
}

async function main(): Promise<void> {
  const { real, realOnly } = realMode(process.argv.slice(2));
  const sizes = realOnly
    ? []
    : (process.env.DDIFF_BENCH_SIZES ?? '40,400,2000')
        .split(',')
        .map(Number)
        .filter((n) => n > 0);
  const engineMax = Number(process.env.DDIFF_BENCH_ENGINE_MAX ?? 400);
  const dir = await mkdtemp(join(process.env.DDIFF_BENCH_DIR ?? tmpdir(), 'ddiff-bench-'));
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const machine = `${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}`;
  process.stderr.write(`ddiff bench on ${machine}\n`);
  if (!dockerAnswers()) process.stderr.write('docker does not answer (set DOCKER_HOST): engine steps are skipped\n');
  const sections = new Map<string, string>();
  let realSection = (): unknown => undefined;
  try {
    if (real !== 'off') {
      const wanted = (process.env.DDIFF_BENCH_REAL_PAIRS ?? 'small,large').split(',');
      const ran = await realImagesBench({
        build: real === 'build',
        dir: process.env.DDIFF_BENCH_REAL_DIR ?? join(repo, '..', 'data', 'real-images'),
        script: process.env.DDIFF_BENCH_REAL_SCRIPT ?? join(repo, '..', 'shared', 'real-images', 'make-images.sh'),
        pairs: REAL_PAIRS.filter((p) => wanted.includes(p.name)),
        scratch: dir,
      });
      if (ran) {
        const isReal = (r: Row) => r.size.startsWith('real ');
        // Written after the generated pairs ran: the acceptance table takes their 2 GB load -o.
        realSection = () =>
          sections.set(
            'real',
            `## Real Debian image pairs (issue 10)\n\nMeasured ${measuredAt()}.\nMachine: ${machine}; ${engines()}.\n` +
              `Each ddiff step and its floor alternate, median of ${process.env.DDIFF_BENCH_REPEAT ?? 3} runs each; ` +
              `peak RSS and CPU are the ddiff node process's own; read/written MB also count the ` +
              `engine CLIs it ran (reaped children add to /proc/self/io). ` +
              `A tools' bound is the same job (what ddiff must read, check and write) done by standard tools ` +
              `(the \`bound:\` rows name them), as a ratio against the same floor: where it misses too, the line asks ` +
              `for less than the job takes on this machine.\n\n${acceptance()}\n\n${table(isReal)}\n`,
          );
      }
    }
    if (!process.argv.includes('--no-delta-pairs') && !realOnly) {
      const deltaDir = process.env.DDIFF_BENCH_DELTA_DIR ?? join(repo, '..', 'data', 'delta-pairs');
      if (await deltaPairsBench(deltaDir, dir)) {
        sections.set(
          'delta',
          `## Delta pairs: the base was rebuilt (issue 11)\n\nMeasured ${measuredAt()}.\nMachine: ${machine}.\n` +
            `Pairs from ../shared/delta/make-pairs.sh (${deltaDir}); diff and load -o from the docker-save archives, median of ${process.env.DDIFF_BENCH_REPEAT ?? 3} runs.\n\n${table((r) => r.size.startsWith('δ '))}\n`,
        );
      }
      if (process.argv.includes('--delta-only')) sizes.length = 0;
    }
    const walls = new Map<number, number>();
    for (const size of sizes) walls.set(size, await scenario(dir, size, Math.max(2, Math.round(size * 0.1)), engineMax));
    if (sizes.length > 1) {
      const smallest = Math.min(...sizes);
      const largest = Math.max(...sizes);
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
    if (sizes.length > 0) {
      sections.set(
        'synthetic',
        `## Generated image pairs\n\nMeasured ${measuredAt()}.\nMachine: ${machine}.\n\n${table((r) => !r.size.startsWith('real ') && !r.size.startsWith('δ '))}\n`,
      );
    }
    realSection();
    for (const text of sections.values()) process.stdout.write(`\n${text}`);
    await writeResults(sections);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function engines(): string {
  const v = (line: string) => spawnSync('bash', ['-c', line], { encoding: 'utf8' }).stdout.trim() || 'absent';
  return `Docker ${v("docker version --format '{{.Server.Version}}' 2>/dev/null")} (${v("docker info --format '{{.Driver}}' 2>/dev/null")}), Podman ${v("podman version --format '{{.Client.Version}}' 2>/dev/null")} (${v("podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null")})`;
}

await main();
