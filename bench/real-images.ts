/**
 * The real Debian image pairs of issue 10, measured against their floors in the same run.
 *
 * Images (built by ../shared/real-images/make-images.sh: debootstrap + `docker build`):
 *   small: bench-base:bookworm (1 layer, ~117 MB)       -> bench-target-small:v1 (+3 layers, ~380 MB)
 *   large: bench-base-large:bookworm (3 layers, ~551 MB) -> bench-target-large:v1 (+3 layers, ~1036 MB)
 *
 * Per pair, each ddiff step interleaved with its floor (median of DDIFF_BENCH_REPEAT runs each):
 *   diff from archives            vs zstd -3 -T0 of the new layers' tar bytes
 *   diff from engine references   vs docker save of the target to /dev/null + that zstd
 *   load → Docker (fast path)     vs docker load of an archive holding only the new layers
 *   load → Docker (--no-fast-path) vs docker load of the full target archive
 *   load → Podman (fast path, full) vs podman load of the full target archive
 *   load -o (base archive)        vs cp of the full target archive
 * and the bundle's size against gzip -6 of the new layers' tar bytes. Before each load (floor or
 * ddiff) the target is removed from the engine; the base stays. Beside the floors, tools' bounds:
 * the same job as ddiff's (reading, checking every layer's digest, writing) done by tar, zstd,
 * tee, openssl and the engines' own save and load; where a bound misses too, the line asks for
 * less than the job takes.
 *
 * The images stay in Docker afterwards (the target as loaded by the last step, with its image ID
 * checked); docker-save archives of all four are kept in WORKDIR/archives/ for other uses.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  attempt,
  ddiff,
  dockerAnswers,
  interleaved,
  type Measure,
  median,
  output,
  podmanAnswers,
  type Probed,
  record,
  shell,
} from './measure.js';

export interface RealPair {
  name: string;
  base: string;
  target: string;
}

export const REAL_PAIRS: RealPair[] = [
  { name: 'small', base: 'bench-base:bookworm', target: 'bench-target-small:v1' },
  { name: 'large', base: 'bench-base-large:bookworm', target: 'bench-target-large:v1' },
];

export interface RealOptions {
  /** Build missing images with the script (else the pairs are skipped with a message). */
  build: boolean;
  /** make-images.sh's WORKDIR; archives go to WORKDIR/archives. */
  dir: string;
  /** ../shared/real-images/make-images.sh */
  script: string;
  pairs: RealPair[];
  /** Scratch directory for extracted layers, bundles and outputs. */
  scratch: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function imageId(engine: 'docker' | 'podman', ref: string): string | undefined {
  const r = spawnSync(engine, ['image', 'inspect', '--format', '{{.Id}}', ref], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const id = r.stdout.trim();
  return id.startsWith('sha256:') ? id : `sha256:${id}`;
}

function diffIds(ref: string): string[] {
  return JSON.parse(output(`docker image inspect --format '{{json .RootFS.Layers}}' ${q(ref)}`)) as string[];
}

/** The docker-save manifest of an archive: its config's digest and its layer paths. */
function archiveManifest(file: string): { id: string; layers: string[] } {
  const [m] = JSON.parse(output(`tar -xOf ${q(file)} manifest.json`)) as { Config: string; Layers: string[] }[];
  const hex = /([0-9a-f]{64})/.exec(m!.Config)?.[1];
  return { id: `sha256:${hex}`, layers: m!.Layers };
}

/** WORKDIR/archives/<ref with : and / as _>.tar, saved from Docker unless one with the image's ID is there. */
async function ensureArchive(dir: string, ref: string): Promise<string> {
  const file = join(dir, 'archives', `${ref.replace(/[:/]/g, '_')}.tar`);
  const id = imageId('docker', ref);
  if (existsSync(file)) {
    try {
      if (archiveManifest(file).id === id) return file;
    } catch {
      // unreadable: save again
    }
  }
  process.stderr.write(`  saving ${ref} to ${file}\n`);
  await mkdir(join(dir, 'archives'), { recursive: true });
  output(`docker save -o ${q(`${file}.part`)} ${q(ref)}`);
  await rename(`${file}.part`, file);
  return file;
}

/**
 * The images, built with make-images.sh when `build` is set. Returns the pairs that can run, or
 * a reason they cannot.
 */
export async function ensureImages(opts: RealOptions): Promise<RealPair[] | string> {
  if (!dockerAnswers()) return 'docker does not answer (set DOCKER_HOST)';
  const missing = (p: RealPair) => [p.base, p.target].filter((ref) => !imageId('docker', ref));
  let lacking = opts.pairs.filter((p) => missing(p).length > 0);
  if (lacking.length > 0 && opts.build) {
    if (!existsSync(opts.script)) return `${opts.script} is missing (the shared real-images scripts)`;
    const which = lacking.length === 2 ? 'both' : lacking[0]!.name;
    process.stderr.write(`[real] building ${which} with ${opts.script} ${opts.dir} (debootstrap + docker build; minutes)\n`);
    await mkdir(opts.dir, { recursive: true });
    const r = spawnSync('bash', [opts.script, opts.dir, which], { stdio: ['ignore', 2, 2] });
    if (r.status !== 0) return `${opts.script} failed (exit ${r.status})`;
    lacking = opts.pairs.filter((p) => missing(p).length > 0);
  }
  if (lacking.length === opts.pairs.length) {
    const refs = lacking.flatMap(missing).join(', ');
    return existsSync(opts.script)
      ? `images ${refs} are missing; \`npm run bench -- --real\` (or DDIFF_BENCH_REAL=build) builds them with ${opts.script}`
      : `images ${refs} are missing and ${opts.script} is not there to build them`;
  }
  for (const p of lacking) process.stderr.write(`[real ${p.name}] skipped: ${missing(p).join(', ')} missing\n`);
  return opts.pairs.filter((p) => missing(p).length === 0);
}

/** Runs the real pairs; prints why when they cannot run. */
export async function realImagesBench(opts: RealOptions): Promise<boolean> {
  const pairs = await ensureImages(opts);
  if (typeof pairs === 'string') {
    process.stderr.write(`\n[real] real image pairs skipped: ${pairs}\n`);
    return false;
  }
  // Archives of all four images first, so none is saved while another pair is being timed.
  const archives = new Map<string, string>();
  for (const p of pairs) for (const ref of [p.base, p.target]) archives.set(ref, await ensureArchive(opts.dir, ref));
  for (const p of pairs) await realPair(p, archives.get(p.base)!, archives.get(p.target)!, opts.scratch);
  return true;
}

/** The bundle entries of the layer blobs a `diff --json` wrote. */
export function layerBlobs(stdout: string): string[] {
  const meta = (JSON.parse(stdout) as { metadata: { blobs: { mediaType: string; digest: string }[] } }).metadata;
  return meta.blobs.filter((b) => b.mediaType.includes('layer')).map((b) => `blobs/sha256/${b.digest.slice(7)}`);
}

/**
 * load -o's bound: the least a tool that checks what it writes does, on both cores at once:
 * inflate the bundle's new layers into a file, copy the base archive, and hash both (the
 * diffIDs; skopeo and docker load check every layer's digest as they copy it). Nothing else: no
 * archive to assemble, no bundle to verify.
 */
export function loadBound(bundle: string, blobs: string[], baseTar: string, dir: string): string {
  const hashTo = (file: string) => `tee >(openssl dgst -sha256 >/dev/null) > ${q(join(dir, file))}`;
  const inflate = `tar -xOf ${q(bundle)} ${blobs.map(q).join(' ')} | zstd -d -q -c | ${hashTo('bound-layers')}`;
  return `(${inflate}) & ${hashTo('bound-base')} < ${q(baseTar)}; wait`;
}

/** load -o's bound as a row, against the same `cp` as ddiff's row. */
export function recordLoadBound(label: string, tools: Measure, cp: Measure, judged: { target?: string; bounds?: string }): void {
  const step = 'bound: zstd -d the new layers and copy the base archive, hashing both';
  record({
    size: label,
    step,
    m: tools,
    baseline: 'cp of the target archive',
    baselineWall: cp.wall,
    ratio: tools.wall / cp.wall,
    ...judged,
  });
}

/**
 * A full rebuild's bound: the base's layers can only come out of the engine (`save`), and its
 * `load` takes in its whole input before it applies a layer (Podman copies a piped archive to a
 * file first), so the two cannot overlap.
 */
async function recordSaveThenLoad(label: string, engine: 'docker' | 'podman', base: string, floor: Measure, accept: string) {
  const format = engine === 'podman' ? ' --format docker-archive' : '';
  const saveBase = await median(() => shell(`${engine} save${format} ${q(base)} > /dev/null`));
  record({ size: label, step: `floor: ${engine} save of the base >/dev/null`, m: saveBase });
  const wall = saveBase.wall + floor.wall;
  record({
    size: label,
    step: `bound: ${engine} save of the base, then ${engine} load of the full target`,
    m: { wall },
    baseline: `${engine} load of the full target`,
    baselineWall: floor.wall,
    ratio: wall / floor.wall,
    target: '≤ 1.2',
    bounds: accept,
  });
}

/**
 * What runs before each `load -o` run (ddiff's, cp's or the bound's): its outputs and the
 * bound's removed, and no dirty pages pending, so that the writeback of what was written just
 * before (at 2 GB, the generated archives) does not land in whichever step comes next.
 */
export function freshLoadOutputs(dir: string, ...outputs: string[]): () => Promise<void> {
  return async () => {
    for (const file of [...outputs, join(dir, 'bound-layers'), join(dir, 'bound-base')]) await rm(file, { force: true });
    await shell('sync');
  };
}

const mediaCompression = (stdout: string): string => {
  try {
    const meta = (JSON.parse(stdout) as { metadata: { blobs: { mediaType: string }[] } }).metadata;
    const kinds = new Set(meta.blobs.filter((b) => b.mediaType.includes('layer')).map((b) => /\+(\w+)$/.exec(b.mediaType)?.[1] ?? 'none'));
    return [...kinds].join('+');
  } catch {
    return '?';
  }
};

async function realPair(p: RealPair, baseTar: string, targetTar: string, scratchRoot: string): Promise<void> {
  const label = `real ${p.name}`;
  const dir = join(scratchRoot, `real-${p.name}`);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'new-only'), { recursive: true });
  const targetId = imageId('docker', p.target)!;
  process.stderr.write(`\n[${label}] ${p.base} -> ${p.target} (${targetId.slice(7, 19)}), scratch ${dir}\n`);

  // The new layers: the target's diffIDs the base lacks, found in the target archive by position.
  const baseIds = new Set(diffIds(p.base));
  const targetIds = diffIds(p.target);
  const manifest = archiveManifest(targetTar);
  if (manifest.id !== targetId) throw new Error(`${targetTar} holds ${manifest.id}, not ${p.target} (${targetId})`);
  const newPaths = manifest.layers.filter((_, i) => !baseIds.has(targetIds[i]!));
  const basePaths = manifest.layers.filter((_, i) => baseIds.has(targetIds[i]!));
  // An archive holding only the new layers (the manifest still names all): what Docker's classic
  // store loads when it has the base. Its layer.tar files are the new layers' tar bytes.
  const newOnly = join(dir, 'new-only');
  const excludes = basePaths.map((l) => `--exclude=${q(l.split('/')[0]!)}`).join(' ');
  output(`tar -xf ${q(targetTar)} -C ${q(newOnly)} ${excludes}`);
  output(`cd ${q(newOnly)} && tar -cf ../new-only.tar *`);
  const newOnlyTar = join(dir, 'new-only.tar');
  const files = newPaths.map((l) => q(join(newOnly, l))).join(' ');
  const newMembers = newPaths.map(q).join(' ');
  const hashAndCompress = `tee >(openssl dgst -sha256 >/dev/null) | zstd -3 -T0 -q -f -o ${q(join(dir, 'bound.zst'))}`;
  let newBytes = 0;
  for (const l of newPaths) newBytes += (await stat(join(newOnly, l))).size;
  const targetBytes = (await stat(targetTar)).size;
  process.stderr.write(
    `  ${newPaths.length} new layers, ${(newBytes / 1e6).toFixed(0)} MB of tar; target archive ${(targetBytes / 1e6).toFixed(0)} MB\n`,
  );
  // Sizes: gzip -6 (once; it is slow and only its size counts) and zstd -3.
  const gzip = await shell(`gzip -6 -c ${files} | wc -c`);
  const gzipSize = Number(gzip.stdout.trim());
  record({ size: label, step: 'floor: gzip -6 of the new layers (1 run)', m: gzip, bundle: gzipSize });
  const zstdSize = Number(output(`zstd -3 -T0 -q -c ${files} | wc -c`));

  // diff from archives vs zstd -3 -T0 of the new layers.
  const bundleA = join(dir, 'archives.ddiff');
  let zstd: Measure = { wall: 0 };
  let bundleASize = 0;
  let newBlobs: string[] = [];
  await attempt(label, 'diff archives', '≤ 1.1', async () => {
    let diffA: Probed;
    [zstd, diffA] = await interleaved(
      () => shell(`zstd -3 -T0 -q -c ${files} > /dev/null`),
      () => ddiff(['diff', '--json', baseTar, targetTar, '-o', bundleA]),
    );
    bundleASize = (await stat(bundleA)).size;
    newBlobs = layerBlobs(diffA.stdout);
    record({ size: label, step: 'floor: zstd -3 -T0 of the new layers', m: zstd, bundle: zstdSize });
    record({
      size: label,
      step: `diff archives (${mediaCompression(diffA.stdout)})`,
      m: diffA,
      bundle: bundleASize,
      baseline: 'zstd -3 -T0 of new layers',
      baselineWall: zstd.wall,
      ratio: diffA.wall / zstd.wall,
      target: '≤ 1.1',
      accept: 'diff from archives ≤ 1.1× zstd',
    });
    // Bound: the target's new layers read from its archive, hashed (their diffIDs are checked)
    // and compressed to a file by the CLIs, all at once.
    const tools = await median(() => shell(`tar -xOf ${q(targetTar)} ${newMembers} | ${hashAndCompress}`));
    record({
      size: label,
      step: 'bound: tar -xO new layers | tee >(openssl sha256) | zstd -3 -T0 -o file',
      m: tools,
      baseline: 'zstd -3 -T0 of new layers',
      baselineWall: zstd.wall,
      ratio: tools.wall / zstd.wall,
      target: '≤ 1.1',
      bounds: 'diff from archives ≤ 1.1× zstd',
    });
    record({
      size: label,
      step: 'bundle size / gzip -6 size',
      m: { wall: 0 },
      bundle: bundleASize,
      baseline: 'gzip -6 of new layers',
      ratio: bundleASize / gzipSize,
      target: '≤ 0.96',
      accept: 'bundle ≤ 0.96× gzip -6',
    });
  });

  // diff from engine references vs docker save >/dev/null + zstd.
  const bundleR = join(dir, 'refs.ddiff');
  let haveRefsBundle = false;
  await attempt(label, 'diff engine refs', '≤ 1.15', async () => {
    const [save, diffR] = await interleaved(
      () => shell(`docker save ${q(p.target)} > /dev/null`),
      () => ddiff(['diff', '--json', '--engine', 'docker', p.base, p.target, '-o', bundleR]),
    );
    haveRefsBundle = true;
    record({ size: label, step: 'floor: docker save of the target >/dev/null', m: save });
    const floor = save.wall + zstd.wall;
    record({
      size: label,
      step: `diff engine refs (${mediaCompression(diffR.stdout)})`,
      m: diffR,
      bundle: (await stat(bundleR)).size,
      baseline: 'docker save >/dev/null + zstd -3 -T0',
      baselineWall: floor,
      ratio: diffR.wall / floor,
      target: '≤ 1.15',
      accept: 'diff from engine refs ≤ 1.15× (save + zstd)',
    });
    // Bound: the same, streamed: docker save | the new layers out | hashed and compressed.
    const tools = await median(() => shell(`docker save ${q(p.target)} | tar -xO ${newMembers} | ${hashAndCompress}`));
    record({
      size: label,
      step: 'bound: docker save | tar -xO new layers | tee >(openssl sha256) | zstd -3 -T0',
      m: tools,
      baseline: 'docker save >/dev/null + zstd -3 -T0',
      baselineWall: floor,
      ratio: tools.wall / floor,
      target: '≤ 1.15',
      bounds: 'diff from engine refs ≤ 1.15× (save + zstd)',
    });
  });
  // The engine loads use the bundle of references (as a user would); else the archives' one.
  const bundle = haveRefsBundle ? bundleR : bundleA;

  const rmiDocker = () => shell(`docker rmi ${q(p.target)} >/dev/null 2>&1 || true`);
  const checkDocker = (what: string) => {
    const id = imageId('docker', p.target);
    if (id !== targetId) throw new Error(`${what} gave ${id ?? 'no image'}, expected ${targetId}`);
  };
  try {
    await attempt(label, 'load → docker (fast path)', '≤ 1.15', async () => {
      const [floor, fast] = await interleaved(
        () => shell(`docker load -q -i ${q(newOnlyTar)} >/dev/null`),
        async () => {
          const r = await ddiff(['load', '--json', '--engine', 'docker', bundle]);
          checkDocker('load → docker');
          return r;
        },
        rmiDocker,
      );
      const mode = (JSON.parse(fast.stdout) as { mode: string }).mode;
      record({ size: label, step: 'floor: docker load of the new layers only', m: floor });
      record({
        size: label,
        step: `load → docker (${mode})`,
        m: fast,
        baseline: 'docker load of new layers only',
        baselineWall: floor.wall,
        ratio: fast.wall / floor.wall,
        target: '≤ 1.15',
        accept: 'fast-path load ≤ 1.15× docker load of new layers',
      });
    });
    await attempt(label, 'load → docker (full rebuild)', '≤ 1.2', async () => {
      const [floor, full] = await interleaved(
        () => shell(`docker load -q -i ${q(targetTar)} >/dev/null`),
        async () => {
          const r = await ddiff(['load', '--json', '--no-fast-path', '--engine', 'docker', bundle]);
          checkDocker('load --no-fast-path → docker');
          return r;
        },
        rmiDocker,
      );
      record({ size: label, step: 'floor: docker load of the full target', m: floor });
      record({
        size: label,
        step: 'load → docker (--no-fast-path, full)',
        m: full,
        baseline: 'docker load of the full target',
        baselineWall: floor.wall,
        ratio: full.wall / floor.wall,
        target: '≤ 1.2',
        accept: 'full rebuild → docker ≤ 1.2× docker load',
      });
      await recordSaveThenLoad(label, 'docker', p.base, floor, 'full rebuild → docker ≤ 1.2× docker load');
    });
  } finally {
    // Leave the target in Docker as it was (a failed step may have removed it).
    if (imageId('docker', p.target) !== targetId) output(`docker load -q -i ${q(targetTar)} >/dev/null`);
  }

  if (podmanAnswers()) await podmanSteps(p, label, bundle, baseTar, targetTar, targetId);
  else process.stderr.write('  (podman does not answer: podman steps skipped)\n');

  // load -o from the base archive vs cp of the full target archive.
  const out = join(dir, 'rebuilt.tar');
  const copy = join(dir, 'copy.tar');
  const fresh = freshLoadOutputs(dir, out, copy);
  await attempt(label, 'load -o (base archive)', '≤ 2', async () => {
    const [cp, lo] = await interleaved(
      () => shell(`cp ${q(targetTar)} ${q(copy)}`),
      () => ddiff(['load', '--json', bundleA, '--base', baseTar, '-o', out]),
      fresh,
    );
    const rebuilt = JSON.parse(output(`tar -xOf ${q(out)} manifest.json`)) as { Config: string }[];
    if (!rebuilt[0]?.Config.includes(targetId.slice(7))) throw new Error(`load -o wrote ${rebuilt[0]?.Config}, expected ${targetId}`);
    record({ size: label, step: 'floor: cp of the full target archive', m: cp });
    record({
      size: label,
      step: 'load -o (base archive)',
      m: lo,
      baseline: 'cp of the target archive',
      baselineWall: cp.wall,
      ratio: lo.wall / cp.wall,
      target: '≤ 2 (at 2 GB)',
      accept: 'load -o ≤ 2× cp (at 2 GB)',
    });
    const tools = await median(() => shell(loadBound(bundleA, newBlobs, baseTar, dir)), fresh);
    recordLoadBound(label, tools, cp, { target: '≤ 2 (at 2 GB)', bounds: 'load -o ≤ 2× cp (at 2 GB)' });
  });
  await rm(dir, { recursive: true, force: true });
}

async function podmanSteps(
  p: RealPair,
  label: string,
  bundle: string,
  baseTar: string,
  targetTar: string,
  targetId: string,
): Promise<void> {
  // Podman's own store: the base loaded from its archive (kept if it was there before).
  const hadBase = imageId('podman', p.base) !== undefined;
  const hadTarget = imageId('podman', p.target) !== undefined;
  if (!hadBase) output(`podman load -q -i ${q(baseTar)} >/dev/null`);
  const rmi = () => shell(`podman rmi ${q(p.target)} >/dev/null 2>&1 || true`);
  try {
    // Podman's fast path (its storage reuses the base layers it holds), and the full rebuild.
    for (const variant of [
      { step: 'load → podman (fast path)', args: [] as string[], mode: 'fast-path', accept: 'fast path → podman ≤ 1.2× podman load' },
      {
        step: 'load → podman (--no-fast-path, full)',
        args: ['--no-fast-path'],
        mode: 'full',
        accept: 'full rebuild → podman ≤ 1.2× podman load',
      },
    ]) {
      await attempt(label, variant.step, '≤ 1.2', async () => {
        const [floor, pd] = await interleaved(
          () => shell(`podman load -q -i ${q(targetTar)} >/dev/null`),
          async () => {
            const r = await ddiff(['load', '--json', '--engine', 'podman', ...variant.args, bundle]);
            const mode = (JSON.parse(r.stdout) as { mode: string }).mode;
            if (mode !== variant.mode) throw new Error(`load → podman ${variant.args.join(' ')} went ${mode}, expected ${variant.mode}`);
            const id = imageId('podman', p.target);
            if (id !== targetId) throw new Error(`load → podman gave ${id ?? 'no image'}, expected ${targetId}`);
            return r;
          },
          rmi,
        );
        record({ size: label, step: 'floor: podman load of the full target', m: floor });
        record({
          size: label,
          step: variant.step,
          m: pd,
          baseline: 'podman load of the full target',
          baselineWall: floor.wall,
          ratio: pd.wall / floor.wall,
          target: '≤ 1.2',
          accept: variant.accept,
        });
        if (variant.mode === 'full') await recordSaveThenLoad(label, 'podman', p.base, floor, variant.accept);
      });
    }
  } finally {
    if (!hadTarget) await rmi();
    if (!hadBase) await shell(`podman rmi ${q(p.base)} >/dev/null 2>&1 || true`);
  }
}
