import { readFile } from 'node:fs/promises';
import { Engine, type EngineChoice } from '../engine/engine.js';
import { DdiffError } from '../errors.js';
import { isDigest, type Digest } from '../util/digest.js';
import type { BaseInfo, Reporter } from './diff.js';
import { resolveInput } from './inputs.js';

/**
 * A have-list: the diffIDs an offline host already holds, written there by `ddiff have` and
 * carried to the connected host, so `diff --have` bundles exactly what that host lacks.
 */
export interface HaveList {
  format: 'ddiff-have';
  version: 1;
  created: string;
  images: { id: Digest; tags: string[]; diffIds: Digest[]; source: string }[];
}

export interface HaveOptions extends EngineChoice {
  json?: boolean;
}

/** `ddiff have [ARCHIVE…]`: every local image (or the given archives/references) and its diffIDs. */
export async function have(inputs: string[], options: HaveOptions, report: Reporter): Promise<void> {
  const images: HaveList['images'] = [];
  if (inputs.length === 0) {
    const engine = Engine.choose(options);
    for (const image of await engine.localImages()) {
      images.push({ id: image.id, tags: image.tags, diffIds: image.diffIds, source: engine.name });
    }
  }
  for (const input of inputs) {
    const resolved = await resolveInput(input, { ...options, verify: false });
    if (resolved.kind === 'engine') {
      const { id, tags, diffIds } = resolved.image;
      images.push({ id, tags, diffIds, source: resolved.source });
    } else {
      for (const image of resolved.images) {
        images.push({ id: image.id, tags: image.tags, diffIds: image.layers.map((l) => l.diffId), source: resolved.source });
      }
    }
  }
  const list: HaveList = { format: 'ddiff-have', version: 1, created: new Date().toISOString(), images };
  if (options.json || !process.stdout.isTTY) {
    report.out(JSON.stringify(list, null, 2));
    return;
  }
  const layers = new Set(images.flatMap((i) => i.diffIds));
  report.out(`${images.length} image(s), ${layers.size} distinct layer(s); use --json > have.json to save the list`);
}

export async function readHaveList(path: string): Promise<BaseInfo> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new DdiffError(`${path}: cannot read the have-list (${(error as Error).message})`);
  }
  const list = doc as Partial<HaveList>;
  if (list.format !== 'ddiff-have' || !Array.isArray(list.images)) throw new DdiffError(`${path}: not a ddiff have-list`);
  if ((list.version ?? 0) > 1) throw new DdiffError(`${path}: have-list version ${list.version} is newer than this ddiff supports`);
  const diffIds = new Set<Digest>();
  const ids: Digest[] = [];
  const tags: string[] = [];
  for (const image of list.images) {
    if (!isDigest(image.id) || !Array.isArray(image.diffIds) || !image.diffIds.every(isDigest)) {
      throw new DdiffError(`${path}: an image entry is malformed`);
    }
    ids.push(image.id);
    tags.push(...(image.tags ?? []));
    for (const d of image.diffIds) diffIds.add(d);
  }
  return { ids, tags, diffIds };
}
