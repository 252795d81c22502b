import { formatPlatform, type Image } from '../image/image.js';
import { shortId } from '../util/digest.js';
import { humanSize, table, truncate } from '../util/format.js';
import type { EngineImage } from '../engine/engine.js';
import { resolveInput, type InputOptions } from './inputs.js';
import { toJson } from './json.js';

interface ListOptions extends InputOptions {
  json?: boolean;
}

export interface ListedImage {
  source: string;
  tags: string[];
  platform: string;
  id: string;
  manifestDigest?: string;
  layers: {
    diffId: string;
    digest?: string;
    mediaType?: string;
    compression?: string;
    size?: number;
    createdBy?: string;
  }[];
  history: { createdBy: string; created?: string; emptyLayer: boolean }[];
}

function toListed(source: string, image: Image): ListedImage {
  const listed: ListedImage = {
    source,
    tags: image.tags,
    platform: formatPlatform(image.platform),
    id: image.id,
    layers: image.layers.map((l) => {
      const layer: ListedImage['layers'][number] = {
        diffId: l.diffId,
        digest: l.digest,
        mediaType: l.mediaType,
        compression: l.compression,
        size: l.size,
      };
      if (l.createdBy !== undefined) layer.createdBy = l.createdBy;
      return layer;
    }),
    history: image.history,
  };
  if (image.manifestDigest) listed.manifestDigest = image.manifestDigest;
  return listed;
}

/** An engine image as `image inspect` tells it: diffIDs only, no stored bytes. */
function fromEngine(source: string, image: EngineImage): ListedImage {
  return {
    source,
    tags: image.tags,
    platform: formatPlatform(image.platform),
    id: image.id,
    layers: image.diffIds.map((diffId) => ({ diffId })),
    history: [],
  };
}

function render(image: ListedImage): string {
  const header = `${image.tags.length ? image.tags.join(', ') : '<none>'}   ${image.platform}   ${image.id}`;
  const rows = [['LAYER', 'DIFF ID', 'SIZE', 'COMPRESSION', 'CREATED BY']];
  image.layers.forEach((layer, i) => {
    rows.push([
      String(i + 1),
      shortId(layer.diffId as `sha256:${string}`),
      layer.size === undefined ? '-' : humanSize(layer.size),
      layer.compression ?? '-',
      truncate((layer.createdBy ?? '').replace(/\s+/g, ' '), 60),
    ]);
  });
  return `${header}\n${table(rows).replace(/^/gm, '  ')}`;
}

/** `ddiff list`: the images of each archive, directory or engine reference. */
export async function list(inputs: string[], options: ListOptions, out: (text: string) => void): Promise<void> {
  const listed: ListedImage[] = [];
  for (const input of inputs) {
    const resolved = await resolveInput(input, { ...options, verify: true });
    if (resolved.kind !== 'archive') listed.push(fromEngine(resolved.source, resolved.image));
    for (const image of resolved.images) listed.push(toListed(resolved.source, image));
  }
  if (options.json) out(toJson({ images: listed }));
  else out(listed.map(render).join('\n\n'));
}
