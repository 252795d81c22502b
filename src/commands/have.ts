import type { EngineChoice } from '../engine/engine.js';
import { chooseEngine } from '../engine/choose.js';
import type { HaveList } from '../bundle/have-list.js';
import type { Reporter } from './report.js';
import type { RegistryOptions } from '../registry/connect.js';
import { classifyInput, imagesNamed, openTarget, resolveInput } from './inputs.js';
import { pipeline } from 'node:stream';
import { readImages } from '../archive/read.js';
import { BaseFileIndex, serializeIndex } from '../delta/index.js';
import { UsageError } from '../errors.js';
import { openUncompressed, verifyingUncompressed } from '../image/layer.js';
import { tempDir } from '../util/cleanup.js';
import type { Digest } from '../util/digest.js';
import { toJson } from './json.js';

export interface HaveOptions extends EngineChoice, RegistryOptions {
  json?: boolean;
  /** Also hash every file of the given images' layers (delta references without the base's bytes). */
  files?: boolean;
}

/** `ddiff have [ARCHIVE…]`: every local image (or the given archives/references) and its diffIDs. */
export async function have(inputs: string[], options: HaveOptions, report: Reporter): Promise<void> {
  if (options.files) await refuseUnindexable(inputs);
  const images: HaveList['images'] = [];
  if (inputs.length === 0) {
    const engine = chooseEngine(options);
    for (const image of await engine.localImages()) {
      images.push({ id: image.id, tags: image.tags, diffIds: image.diffIds, source: engine.name });
    }
  }
  const indexed = options.files ? await indexFiles(inputs, options) : undefined;
  if (indexed) images.push(...indexed.images);
  for (const input of indexed ? [] : inputs) {
    const resolved = await resolveInput(input, { ...options, verify: false });
    if (resolved.kind !== 'archive') {
      const { id, tags, diffIds } = resolved.image;
      images.push({ id, tags, diffIds, source: resolved.source });
    } else {
      for (const image of resolved.images) {
        images.push({ id: image.id, tags: image.tags, diffIds: image.layers.map((l) => l.diffId), source: resolved.source });
      }
    }
  }
  const list: HaveList = { format: 'ddiff-have', version: 1, created: new Date().toISOString(), images };
  if (indexed) {
    list.version = 2;
    list.files = indexed.files.toString('base64');
  }
  if (options.json || !process.stdout.isTTY) {
    report.out(toJson(list));
    return;
  }
  const layers = new Set(images.flatMap((i) => i.diffIds));
  report.out(`${images.length} image(s), ${layers.size} distinct layer(s); use --json > have.json to save the list`);
}

/**
 * Every file of the inputs' layers, hashed (delta/serialize.ts): the connected host's `diff
 * --have` then refers to the files this host has, even in layers whose diffIDs changed (a
 * rebuilt base). Each layer is read once and checked against its diffID.
 */
async function indexFiles(inputs: string[], options: HaveOptions): Promise<{ images: HaveList['images']; files: Buffer }> {
  // Each input is opened once, for its images and its layers' bytes alike.
  const images: HaveList['images'] = [];
  const index = new BaseFileIndex();
  const indexed = new Set<Digest>();
  const spool = await tempDir('ddiff-have-');
  try {
    for (const input of inputs) {
      const { catalog, image, engine } = await openTarget(input, spool.path, options);
      const named = imagesNamed((await readImages(catalog)).images, image, catalog.source);
      const source = engine ? `${engine}:${input}` : catalog.source;
      for (const i of named) images.push({ id: i.id, tags: i.tags, diffIds: i.layers.map((l) => l.diffId), source });
      for (const layer of named.flatMap((i) => i.layers)) {
        if (indexed.has(layer.diffId)) continue;
        indexed.add(layer.diffId);
        await index.addLayer(
          layer.diffId,
          pipeline(openUncompressed(layer), verifyingUncompressed(layer), () => undefined),
          { hash: true },
        );
      }
    }
  } finally {
    await spool.dispose();
  }
  return { images, files: serializeIndex(index) };
}

/** `--files` reads every layer: of named local images or archives only. */
async function refuseUnindexable(inputs: string[]): Promise<void> {
  if (inputs.length === 0) {
    throw new UsageError('have --files needs the images whose files to hash: ddiff have --files IMAGE|ARCHIVE… (every file is read)');
  }
  for (const input of inputs) {
    if ((await classifyInput(input)).kind === 'registry') {
      throw new UsageError(`${input}: have --files reads layers, and a registry image's are not downloaded; pull it first`);
    }
  }
}
