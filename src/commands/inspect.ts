import { stat } from 'node:fs/promises';
import { openBundle } from '../bundle/read.js';
import type { BundleMetadata, DeltaInfo } from '../bundle/format.js';
import { shortId, type Digest } from '../util/digest.js';
import { humanSize, table } from '../util/format.js';
import type { Reporter } from './report.js';
import { type BaseJson, baseJson, toJson } from './json.js';

export interface BundleSummary {
  bundle: string;
  size: number;
  /** Bytes of the complete images (configs + every layer as the targets stored them). */
  fullSize: number;
  saved: number;
  savedPercent: number;
  base: BaseJson;
  images: {
    tags: string[];
    id: Digest;
    platform: string;
    layers: { diffId: Digest; included: boolean; blob?: Digest; size?: number; bundledSize?: number; delta?: DeltaInfo }[];
  }[];
}

async function summarize(path: string): Promise<BundleSummary> {
  const bundle = await openBundle(path);
  await bundle.dispose(); // only the metadata is used
  return summarizeMetadata(bundle.metadata, path, (await stat(path)).size);
}

/** What a bundle of `size` bytes with this metadata holds and saves (`diff --json` prints it too). */
export function summarizeMetadata(metadata: BundleMetadata, path: string, size: number): BundleSummary {
  const blobSize = new Map(metadata.blobs.map((b) => [b.digest, b.size]));
  const blobDelta = new Map(metadata.blobs.map((b) => [b.digest, b.delta]));
  let fullSize = 0;
  const images = metadata.images.map((image) => {
    fullSize += blobSize.get(image.id) ?? 0;
    return {
      tags: image.tags,
      id: image.id,
      platform: image.platform,
      layers: image.layers.map((l) => {
        fullSize += l.size ?? 0;
        const layer: BundleSummary['images'][number]['layers'][number] = { diffId: l.diffId, included: l.blob !== undefined };
        if (l.blob) {
          layer.blob = l.blob;
          layer.bundledSize = blobSize.get(l.blob) ?? 0;
          const delta = blobDelta.get(l.blob);
          if (delta) layer.delta = delta;
        }
        if (l.size !== undefined) layer.size = l.size;
        return layer;
      }),
    };
  });
  const saved = Math.max(0, fullSize - size);
  return {
    bundle: path,
    size,
    fullSize,
    saved,
    savedPercent: fullSize ? Math.round((saved / fullSize) * 1000) / 10 : 0,
    base: baseJson(metadata.base),
    images,
  };
}

const percent = (part: number, whole: number) => `${Math.round((part / whole) * 1000) / 10}%`;

/** "delta, 1% of the 121.5MB layer tar (2.4% of whole 49.1MB); files: 1200 referenced, 6 deltified, 3 literal". */
function deltaText(delta: DeltaInfo, size: number): string {
  let share = `${percent(size, delta.uncompressedSize || 1)} of the ${humanSize(delta.uncompressedSize)} layer tar`;
  if (delta.wholeSize) share += ` (${percent(size, delta.wholeSize)} of whole ${humanSize(delta.wholeSize)})`;
  const { referenced, deltified, literal } = delta.files;
  return `delta, ${share}; files: ${referenced} referenced, ${deltified} deltified, ${literal} literal`;
}

/** `ddiff inspect BUNDLE`: what the bundle holds and needs, and what it saves. */
export async function inspect(path: string, options: { json?: boolean }, report: Reporter): Promise<void> {
  const summary = await summarize(path);
  if (options.json) {
    report.out(toJson(summary));
    return;
  }
  const lines = [
    `Bundle ${path}: ${humanSize(summary.size)} (full images ${humanSize(summary.fullSize)}; saves ${humanSize(summary.saved)}, ${summary.savedPercent}%)`,
    `Base: ${summary.base.reference ?? '(have-list or scratch)'}${summary.base.tags.length ? ` [${summary.base.tags.join(', ')}]` : ''}; needs ${summary.base.needed.length} layer(s)`,
  ];
  for (const image of summary.images) {
    lines.push('', `${image.tags.join(', ') || '<none>'}   ${image.platform}   ${image.id}`);
    const rows = [['LAYER', 'DIFF ID', 'SOURCE', 'SIZE', 'IN BUNDLE', 'AS']];
    image.layers.forEach((l, i) =>
      rows.push([
        String(i + 1),
        shortId(l.diffId),
        l.included ? 'bundle' : 'base',
        l.size === undefined ? '-' : humanSize(l.size),
        l.bundledSize === undefined ? '-' : humanSize(l.bundledSize),
        !l.included ? '-' : l.delta ? deltaText(l.delta, l.bundledSize ?? 0) : 'whole',
      ]),
    );
    lines.push(table(rows).replace(/^/gm, '  '));
  }
  report.out(lines.join('\n'));
}
