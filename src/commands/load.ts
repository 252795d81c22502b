import type { BundleImage } from '../bundle/format.js';
import { type Bundle, verifyBundle, withBundle } from '../bundle/read.js';
import type { Engine, EngineChoice } from '../engine/engine.js';
import { chooseEngine } from '../engine/choose.js';
import { DdiffError, UsageError } from '../errors.js';
import { loadIntoRegistry } from '../load/registry.js';
import { chooseBase } from '../load/base.js';
import { contentStoreOmissions, fastPathOmissions, podmanStoreOmissions } from '../load/fast-path.js';
import { Containerd } from '../engine/containerd.js';
import type { OmittedLayer } from '../image/layer.js';
import { type RebuiltLayers, rebuildDeltaLayers } from '../load/delta-layers.js';
import { planArchive } from '../load/plan.js';
import { loadIntoEngine, type Snapshot, snapshot, writeToFile, writeToStream } from '../load/sinks.js';
import { isInterrupted, tempDir } from '../util/cleanup.js';
import type { Digest } from '../util/digest.js';
import type { Reporter } from './report.js';
import { baseJson, toJson } from './json.js';
import { summaryChannel, summaryLine } from './output.js';
import { refuseTerminal } from './refusals.js';
import type { RegistryOptions } from '../registry/connect.js';

export interface LoadOptions extends EngineChoice, RegistryOptions {
  /** `--to docker://HOST/REPO:TAG`: push the rebuilt image into a registry instead. */
  to?: string;
  base?: string;
  output?: string;
  image?: string;
  json?: boolean;
  /** false (--no-fast-path): always send the complete image, even to Docker's classic store. */
  fastPath?: boolean;
}

function selectBundleImages(bundle: Bundle, wanted: string | undefined): BundleImage[] {
  const all = bundle.metadata.images;
  if (wanted === undefined) return all;
  const images = all.filter((i) => i.tags.includes(wanted) || i.id === wanted || i.id.startsWith(`sha256:${wanted}`));
  if (images.length === 0) throw new DdiffError(`${bundle.path}: no image '${wanted}' in the bundle`);
  return images;
}

/** The diffIDs the images need from the base: layers they take from it, and those their delta layers read. */
export function neededFromBase(bundle: Bundle, images: BundleImage[]): Digest[] {
  const blobs = new Map(bundle.metadata.blobs.map((b) => [b.digest, b]));
  const layers = images.flatMap((i) => i.layers);
  return [
    ...new Set([
      ...layers.filter((l) => !l.blob).map((l) => l.diffId),
      ...layers.flatMap((l) => (l.blob ? (blobs.get(l.blob)?.delta?.baseLayers ?? []) : [])),
    ]),
  ];
}

/** `ddiff load BUNDLE`: verify, find the base, rebuild the image and load it (or write it). */
export async function load(bundlePath: string, options: LoadOptions, report: Reporter): Promise<void> {
  refuseTerminal(options.output, 'the image archive');
  await withBundle(bundlePath, (bundle) => loadBundle(bundle, options, report));
}

/** `load --to docker://…`: the verified bundle's image into a registry. */
async function pushBundle(
  bundle: Bundle,
  images: BundleImage[],
  needed: Digest[],
  options: LoadOptions & { to: string },
  verified: Promise<void>,
  report: Reporter,
): Promise<void> {
  if (options.output !== undefined) throw new UsageError('--to and -o exclude each other');
  await verified;
  let engine: Engine | undefined;
  const spool = await tempDir('ddiff-load-');
  try {
    const pushed = await loadIntoRegistry(bundle, images, needed, options, spool.path, () => (engine ??= chooseEngine(options)));
    const { stats } = pushed;
    if (options.json) {
      const summary = {
        images: images.map((i) => ({ id: i.id, tags: i.tags })),
        base: baseJson(bundle.metadata.base),
        baseSource: pushed.base,
        mode: 'registry',
        output: pushed.reference,
        engine: null,
      };
      report.out(toJson({ ...summary, manifest: pushed.manifestDigest, blobs: stats }));
    } else {
      summaryLine(
        undefined,
        report,
      )(
        `Pushed ${pushed.reference}@${pushed.manifestDigest}: ${stats.uploaded} blob(s) uploaded (${stats.bytes} bytes), ${stats.mounted} mounted, ${stats.present} already there`,
      );
    }
  } finally {
    await spool.dispose();
  }
}

async function loadBundle(bundle: Bundle, options: LoadOptions, report: Reporter): Promise<void> {
  // Blobs are verified while the base is looked up; nothing is written before both are done.
  const verified = verifyBundle(bundle);
  verified.catch(() => undefined);
  const images = selectBundleImages(bundle, options.image);
  const needed = neededFromBase(bundle, images);
  if (options.to !== undefined) return pushBundle(bundle, images, needed, { ...options, to: options.to }, verified, report);
  const toEngine = options.output === undefined;
  let engine: Engine | undefined;
  const getEngine = () => (engine ??= chooseEngine(options, 'to write the image to a file instead: ddiff load BUNDLE -o FILE'));
  const spool = await tempDir('ddiff-load-');
  let rebuilt: RebuiltLayers | undefined;
  // What the engine holds under the images' names, to undo an interrupted load: asked for beside
  // the verification (each engine CLI call is 70-150 ms), not after it. An engine that cannot be
  // chosen is reported where it is first needed.
  let before: Promise<Snapshot> | undefined;
  try {
    if (toEngine) {
      try {
        before = snapshot(getEngine(), images);
        // The fast path's question to Docker (`docker info`, ~110 ms), asked here too.
        if (options.fastPath !== false)
          getEngine()
            .hasClassicStore()
            .catch(() => undefined);
      } catch {}
    }
    const preferEngine = toEngine && options.fastPath !== false;
    const [verifiedResult, baseResult, engineResult] = await Promise.allSettled([
      verified,
      chooseBase(bundle, needed, { ...(options.base === undefined ? {} : { base: options.base }), preferEngine }, spool.path, getEngine),
      // Whether the engine answers: known before anything is fed to it.
      toEngine ? Promise.resolve().then(() => getEngine().ready()) : undefined,
    ]);
    if (verifiedResult.status === 'rejected') throw verifiedResult.reason;
    if (baseResult.status === 'rejected') throw baseResult.reason;
    if (engineResult.status === 'rejected') throw engineResult.reason;
    const base = baseResult.value;
    let omit: Map<Digest, OmittedLayer> | undefined;
    if (preferEngine && base.kind === 'engine' && base.engine.name === 'docker') {
      const target = getEngine();
      if (target.name === 'docker' && (await target.hasClassicStore())) omit = fastPathOmissions(images, base.images);
    }
    if (preferEngine && base.kind === 'engine' && base.engine.name === 'podman' && getEngine().name === 'podman') {
      omit = podmanStoreOmissions(images, base.images);
    }
    if (preferEngine && base.kind === 'engine' && base.engine instanceof Containerd && base.engine === getEngine()) {
      omit = contentStoreOmissions(needed, base.images, await base.engine.contentDigests());
    }
    // Rebuilt as they are written when the output is a file under a temporary name.
    const streamed = options.output !== undefined && options.output !== '-';
    rebuilt = await rebuildDeltaLayers(bundle, images, base, spool.path, { streamed });
    const job = planArchive(bundle, images, base, needed, omit, rebuilt.layers);
    const target = toEngine ? getEngine() : undefined;
    const summary = {
      images: images.map((i) => ({ id: i.id, tags: i.tags })),
      base: baseJson(bundle.metadata.base),
      baseSource: base.kind === 'none' ? null : base.name,
      mode: omit ? 'fast-path' : 'full',
      output: options.output ?? `${target!.name} load`,
      engine: target?.name ?? null,
    };
    if (options.output === '-') {
      await writeToStream(process.stdout, job);
    } else if (options.output !== undefined) {
      await writeToFile(options.output, job);
    } else {
      const printed = await loadIntoEngine(target!, job, images, before);
      if (isInterrupted()) return; // the load was undone; "interrupted" is all there is to say
      if (!options.json && printed.trim()) report.out(printed.trim());
    }
    const say = summaryLine(options.output, report);
    if (options.json) summaryChannel(options.output, report)(toJson(summary));
    else if (target) say(`Loaded ${images.length} image(s) into ${target.name} (${summary.mode})`);
    else if (options.output !== '-') say(`Wrote ${options.output} (${summary.mode}; ${images.length} image(s))`);
  } finally {
    await before; // its engine calls end before the command does, whatever happened
    await rebuilt?.close();
    await spool.dispose();
  }
}
