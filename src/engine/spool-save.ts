import { SpoolCatalog } from '../archive/spool-catalog.js';
import { ArchiveError, EngineError, TarFormatError, TarTruncatedError, UnsafePathError } from '../errors.js';
import { digestFromName } from '../image/blob-names.js';
import { chainIds, layerOfV1Json } from '../image/v1-id.js';
import { normalizeEntryName } from '../tar/names.js';
import { type EntryBody, type PushedEntry, TarPushReader } from '../tar/push-reader.js';
import type { Digest } from '../util/digest.js';
import { SpoolFile } from '../util/spool-file.js';
import type { BodySink } from './api-stream.js';

/** What tells a target's save which layers need not be kept: its diffIDs, and those the base has. */
export interface PassOver {
  diffIds: readonly Digest[];
  baseHas: ReadonlySet<Digest>;
}

/** Bytes enough to tell a compression by its magic. */
const HEAD = 6;

/** How much of a stream's end is kept, to find the daemon's error in it. */
const TAIL = 4096;

/**
 * The daemon's error at the end of a save stream: a save that fails once bytes have gone out
 * cannot change its status, so Docker writes `{"errorDetail":…,"error":"…"}` into the tar
 * (moby's getImagesGet). Undefined when the stream ends otherwise.
 */
export function daemonErrorIn(tail: Buffer): string | undefined {
  const text = tail.toString('utf8');
  const at = text.lastIndexOf('{"errorDetail"');
  if (at < 0) return undefined;
  const line = text.slice(at).split(/[\r\n\0]/)[0]!;
  try {
    const said = JSON.parse(line) as { error?: unknown; errorDetail?: { message?: unknown } };
    const message = said.errorDetail?.message ?? said.error;
    if (typeof message === 'string' && message) return message;
  } catch {}
  return /"message":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1] ?? 'the save failed midway';
}

/**
 * Which save-stream entries are layers the base has, told by their names before their bytes
 * arrive: `blobs/sha256/<diffID>` (Docker ≥ 25), `<diffID>.tar` (Podman), or `<v1id>/layer.tar`
 * (Docker ≤ 24), whose v1 ID is checked against the directory's `json` (v1-id.ts). A name that
 * proves nothing is kept.
 */
class LayerNames {
  private readonly chain: Digest[];
  private readonly v1Json = new Map<string, Buffer[]>();

  constructor(private readonly known: PassOver) {
    this.chain = chainIds(known.diffIds);
  }

  /** True for an entry that holds a layer the base has. */
  baseLayer(name: string): boolean {
    const diffId = this.diffIdOf(name);
    return diffId !== undefined && this.known.baseHas.has(diffId);
  }

  /** The body of a `<v1id>/json` entry, for its `layer.tar` to be told by. */
  v1JsonSink(name: string): ((view: Buffer) => void) | undefined {
    const dir = /^([0-9a-f]{64})\/json$/.exec(name)?.[1];
    if (!dir) return undefined;
    const parts: Buffer[] = [];
    this.v1Json.set(dir, parts);
    return (view) => void parts.push(Buffer.from(view));
  }

  private diffIdOf(name: string): Digest | undefined {
    const podman = /^([0-9a-f]{64})\.tar$/.exec(name)?.[1];
    const named = podman ? (`sha256:${podman}` as const) : digestFromName(name);
    if (named) return named;
    const dir = /^([0-9a-f]{64})\/layer\.tar$/.exec(name)?.[1];
    const json = dir && this.v1Json.get(dir);
    if (!dir || !json) return undefined;
    const index = layerOfV1Json(dir, Buffer.concat(json).toString('utf8'), this.chain);
    return index === undefined ? undefined : this.known.diffIds[index];
  }
}

/**
 * Reads an engine's save stream (a docker-archive) into a spool file under `path`, keeping every
 * entry but the layers the base already has: a diff never reads those, and spooling them cost
 * the page cache a gigabyte for the large real pair. `passOver` is awaited before the first
 * entry is read. Errors in the stream are ArchiveErrors naming `source`.
 */
export async function spoolSave(
  stream: (sink: BodySink) => Promise<void>,
  path: string,
  source: string,
  passOver: Promise<PassOver>,
): Promise<SpoolCatalog> {
  const catalog = new SpoolCatalog(source, path);
  const spool = await SpoolFile.create(path);
  let names: LayerNames | undefined;
  const onEntry = (entry: PushedEntry): EntryBody => {
    const name = normalizeEntryName(entry.name);
    if (entry.type === 'file' && names!.baseLayer(name)) {
      const head = Buffer.alloc(HEAD);
      let filled = 0;
      catalog.passOver(entry, () => head.subarray(0, filled));
      return (view: Buffer) => {
        if (filled < HEAD) filled += view.copy(head, filled, 0, HEAD - filled);
        return undefined;
      };
    }
    catalog.keep(entry, spool.size);
    const json = names!.v1JsonSink(name);
    return (view: Buffer) => {
      json?.(view);
      return spool.append(view);
    };
  };
  const reader = new TarPushReader(onEntry);
  const tail = Buffer.alloc(TAIL);
  let tailLength = 0;
  const sink: BodySink = (view) => {
    const keep = Math.min(tailLength, TAIL - Math.min(view.length, TAIL));
    tail.copyWithin(0, tailLength - keep, tailLength);
    tailLength = keep + view.copy(tail, keep, Math.max(0, view.length - TAIL));
    if (names) return reader.push(view);
    return passOver.then((known) => {
      names = new LayerNames(known);
      return reader.push(view);
    });
  };
  try {
    await stream(sink);
    reader.end();
    await spool.finish();
  } catch (error) {
    await spool.abandon();
    const said =
      error instanceof TarFormatError || error instanceof TarTruncatedError ? daemonErrorIn(tail.subarray(0, tailLength)) : undefined;
    if (said !== undefined) throw new EngineError(`${source} failed: ${said}`, { cause: error });
    if (error instanceof TarFormatError || error instanceof TarTruncatedError || error instanceof UnsafePathError) {
      throw new ArchiveError(source, `cannot read the archive stream: ${error.message}`, { cause: error });
    }
    throw error;
  }
  return catalog;
}
