import { readFile } from 'node:fs/promises';
import { DdiffError } from '../errors.js';
import { isDigest, type Digest } from '../util/digest.js';
import { type BaseFileIndex, deserializeIndex } from '../delta/index.js';

/**
 * A have-list: the diffIDs an offline host already holds, written there by `ddiff have` and
 * carried to the connected host, so `diff --have` bundles exactly what that host lacks.
 */
export interface HaveList {
  format: 'ddiff-have';
  /** 2 when `files` is there. */
  version: 1 | 2;
  created: string;
  images: { id: Digest; tags: string[]; diffIds: Digest[]; source: string }[];
  /**
   * `ddiff have --files`: every file of the listed images' layers, hashed (delta/serialize.ts,
   * base64), so `diff --have` can refer to files this host has without their bytes.
   */
  files?: string;
}

/** What the base host has: from metadata only (inspect, an archive's configs, or a have-list). */
export interface BaseInfo {
  reference?: string;
  ids: Digest[];
  tags: string[];
  diffIds: Set<Digest>;
  /** The files of the base's layers, by hash (a have-list made with --files). */
  fileIndex?: BaseFileIndex;
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
  if ((list.version ?? 0) > 2) throw new DdiffError(`${path}: have-list version ${list.version} is newer than this ddiff supports`);
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
  if (list.files === undefined) return { ids, tags, diffIds };
  if (typeof list.files !== 'string') throw new DdiffError(`${path}: its file index is malformed`);
  const fileIndex = await deserializeIndex(Buffer.from(list.files, 'base64'), `${path}: file index`);
  return { ids, tags, diffIds, fileIndex };
}
