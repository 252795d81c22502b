import { basename } from 'node:path';
import type { Catalog } from '../archive/catalog.js';
import { readImages } from '../archive/read.js';
import { writeBundle } from '../bundle/write.js';
import { DEFAULT_LEVELS, type LayerCompression } from '../bundle/stage-layer.js';
import type { EngineChoice } from '../engine/engine.js';
import { errorMessage, UsageError } from '../errors.js';
import { parsePlatform, type Image } from '../image/image.js';
import { selectImages } from '../image/platform.js';
import { tempDir } from '../util/cleanup.js';
import { shortId } from '../util/digest.js';
import { humanSize } from '../util/format.js';
import { type BaseInfo, readHaveList } from '../bundle/have-list.js';
import type { DeltaSources } from '../bundle/delta-stage.js';
import { pipeline } from 'node:stream';
import { type Layer, openUncompressed, verifyingUncompressed } from '../image/layer.js';
import type { Reporter } from './report.js';
import { summarizeMetadata } from './inspect.js';
import { toJson } from './json.js';
import { summaryChannel, summaryLine } from './output.js';
import { refuseEmpty, refuseTerminal } from './refusals.js';
import { imagesNamed, openTarget, resolveInput } from './inputs.js';
import type { RegistryOptions } from '../registry/connect.js';

export interface DiffOptions extends EngineChoice, RegistryOptions {
  have?: string;
  /** false (--no-delta): every new layer whole. */
  delta?: boolean;
  output?: string;
  json?: boolean;
  level?: string;
  compress?: string;
  platform?: string;
  /** Write the bundle even when a target adds no layer to the base. */
  allowEmpty?: boolean;
}

const LEVEL_RANGES = { gzip: [1, 9], zstd: [1, 19], none: [0, 0] } as const;

function layerCompression(options: { compress?: string; level?: string }): LayerCompression {
  const method = options.compress ?? 'zstd';
  if (method !== 'gzip' && method !== 'zstd' && method !== 'none') {
    throw new UsageError(`--compress must be gzip, zstd or none, got '${method}'`);
  }
  if (options.level === undefined || method === 'none') return { method, level: DEFAULT_LEVELS[method] };
  const level = Number(options.level);
  const [min, max] = LEVEL_RANGES[method];
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new UsageError(`--level for ${method} must be ${min}-${max}, got '${options.level}'`);
  }
  return { method, level };
}

/** `app_1.ddiff` for `registry/team/app:1`; the short image ID when untagged. */
function defaultBundleName(image: Image): string {
  const tag = image.tags[0];
  if (!tag) return `${shortId(image.id)}.ddiff`;
  const colon = tag.lastIndexOf(':');
  const hasTag = colon > tag.lastIndexOf('/');
  const name = basename(hasTag ? tag.slice(0, colon) : tag);
  return `${name}_${hasTag ? tag.slice(colon + 1) : 'latest'}.ddiff`.replace(/[^A-Za-z0-9._-]/g, '_');
}

const SCRATCH_BASE: BaseInfo = { ids: [], tags: [], diffIds: new Set() };

/** What the base has, and (for `diff BASE`, not a have-list) a way to read its layers' bytes. */
type DescribedBase = BaseInfo & { layers?: (spoolDir: string) => Promise<Layer[]> };

async function describeBase(input: string, options: DiffOptions): Promise<DescribedBase> {
  const resolved = await resolveInput(input, { ...options, verify: false });
  if (resolved.kind === 'registry') {
    // A registry base is read for its diffIDs only: deltas would need its layers' bytes.
    const { image } = resolved;
    return { reference: input, ids: [image.id], tags: image.tags, diffIds: new Set(image.diffIds) };
  }
  if (resolved.kind === 'engine') {
    const { engine, image, ref } = resolved;
    return {
      reference: input,
      ids: [image.id],
      tags: image.tags,
      diffIds: new Set(image.diffIds),
      layers: async (spoolDir) => {
        const catalog = await engine.saveToRead(ref, spoolDir, Promise.resolve({ diffIds: image.diffIds, baseHas: new Set() }));
        return (await readImages(catalog)).images.flatMap((i) => i.layers);
      },
    };
  }
  const images = resolved.images;
  return {
    reference: input,
    ids: images.map((i) => i.id),
    tags: images.flatMap((i) => i.tags),
    diffIds: new Set(images.flatMap((i) => i.layers.map((l) => l.diffId))),
    layers: async () => images.flatMap((i) => i.layers),
  };
}

/**
 * The base layers new layers may be stored as deltas against: those of a base that was
 * rebuilt, i.e. the base's layers the targets do not share. A target built FROM the base
 * shares all of them, and then no delta is tried (nothing to gain, nothing read).
 */
async function deltaSources(
  base: DescribedBase,
  targets: Image[],
  spoolDir: string,
  warn: (text: string) => void,
): Promise<DeltaSources | undefined> {
  const shared = new Set(targets.flatMap((t) => t.layers.map((l) => l.diffId)));
  if (base.fileIndex) {
    // A have-list made with --files: references to the base host's files, by hash.
    return base.fileIndex.layers.some((l) => !shared.has(l.diffId)) ? { layers: [], index: base.fileIndex, warn } : undefined;
  }
  if (!base.layers) return undefined;
  if ([...base.diffIds].every((d) => shared.has(d))) return undefined;
  const seen = new Set<string>();
  let all: Layer[];
  try {
    all = await base.layers(spoolDir);
  } catch (error) {
    warn(`warning: the base's layers cannot be read for deltas (${errorMessage(error)}); new layers are stored whole`);
    return undefined;
  }
  const layers = all.filter((l) => !shared.has(l.diffId) && !seen.has(l.diffId) && seen.add(l.diffId));
  // Checked against its diffID as it is read: a delta made against corrupt base bytes would not
  // rebuild on the load host, whose base is intact.
  const open = (l: Layer) => pipeline(openUncompressed(l), verifyingUncompressed(l), () => undefined);
  return {
    layers: layers.map((l) => ({
      diffId: l.diffId,
      open: () => open(l),
      ...(l.file && l.compression === 'none' ? { file: { ...l.file, length: l.size } } : {}),
    })),
    warn,
  };
}

/** `ddiff diff BASE TARGET…` / `ddiff diff --have FILE TARGET…`. */
export async function diff(inputs: string[], options: DiffOptions, report: Reporter): Promise<void> {
  if (options.have) {
    if (inputs.length === 0) throw new UsageError('diff --have needs at least one target');
    return diffAgainst(await readHaveList(options.have), inputs, options, report);
  }
  if (inputs.length < 2) throw new UsageError('diff needs a base and at least one target (or --have FILE)');
  const [base, ...targets] = inputs as [string, ...string[]];
  return diffAgainst(base, targets, options, report);
}

/** Writes the bundle of `targets` against what `base` has (undefined: `FROM scratch`, nothing). */
export async function diffAgainst(
  base: DescribedBase | string | undefined,
  targets: string[],
  options: DiffOptions,
  report: Reporter,
): Promise<void> {
  refuseTerminal(options.output, 'the bundle');
  const compression = layerCompression(options);
  const wanted = options.platform ? parsePlatform(options.platform) : undefined;
  const spool = await tempDir('ddiff-diff-');
  try {
    // The first target's save (most of a diff by reference) starts beside the base's inspect.
    const described: DescribedBase | Promise<DescribedBase> =
      base === undefined ? SCRATCH_BASE : typeof base === 'string' ? describeBase(base, options) : base;
    const baseHas = Promise.resolve(described).then((b) => b.diffIds);
    baseHas.catch(() => undefined); // the base's own failure is reported below, not as unhandled
    const first = openTarget(targets[0]!, spool.path, options, baseHas);
    const [baseResult, firstResult] = await Promise.allSettled([described, first]);
    if (baseResult.status === 'rejected') throw baseResult.reason;
    if (firstResult.status === 'rejected') throw firstResult.reason;
    const baseInfo = baseResult.value;
    const baseName = baseInfo.reference ?? (base === undefined ? 'scratch' : 'the have-list');
    const chosen: { image: Image; catalog: Catalog }[] = [];
    const engines = new Set<string>();
    for (const [n, target] of targets.entries()) {
      const before = chosen.length;
      const { catalog, image: named, engine } = n === 0 ? firstResult.value : await openTarget(target, spool.path, options, baseHas);
      if (engine) engines.add(engine);
      const { images } = await readImages(catalog);
      if (images.length === 0) throw catalog.fail('holds no images');
      for (const image of selectImages(imagesNamed(images, named, catalog.source), catalog.source, wanted)) {
        chosen.push({ image, catalog });
        if (base !== undefined && !image.layers.some((l) => baseInfo.diffIds.has(l.diffId))) {
          report.warn(
            `warning: ${target} (${image.tags[0] ?? shortId(image.id)}) shares no layers with ${baseName}; the bundle holds all its layers${(baseInfo.layers || baseInfo.fileIndex) && options.delta !== false ? ' (as deltas against the base where smaller)' : ''}`,
          );
        }
      }
      if (!options.allowEmpty) refuseEmpty(target, baseName, chosen.slice(before), baseInfo.diffIds);
    }
    const output = options.output ?? defaultBundleName(chosen[0]!.image);
    const images = chosen.map((c) => c.image);
    const deltas = options.delta === false ? undefined : await deltaSources(baseInfo, images, spool.path, report.warn);
    const result = await writeBundle(output, {
      base: { ...(baseInfo.reference ? { reference: baseInfo.reference } : {}), ids: baseInfo.ids, tags: baseInfo.tags, needed: [] },
      targets: chosen,
      baseHas: baseInfo.diffIds,
      compression,
      ...(deltas ? { deltas } : {}),
    });
    const layerCount = result.metadata.images.reduce((n, i) => n + i.layers.length, 0);
    const included = result.metadata.images.reduce((n, i) => n + i.layers.filter((l) => l.blob).length, 0);
    if (options.json) {
      const summary = summarizeMetadata(result.metadata, output, result.size);
      summaryChannel(output, report)(toJson({ ...summary, included, metadata: result.metadata }));
    } else if (output !== '-') {
      const say = summaryLine(output, report);
      say(
        `Wrote ${output} (${humanSize(result.size)}): ${included} of ${layerCount} layers; the base provides ${result.metadata.base.needed.length}${engines.size ? `; targets read from ${[...engines].join(', ')}` : ''}`,
      );
    }
  } finally {
    await spool.dispose();
  }
}
