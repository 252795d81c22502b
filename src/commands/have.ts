import type { EngineChoice } from '../engine/engine.js';
import { chooseEngine } from '../engine/choose.js';
import type { HaveList } from '../bundle/have-list.js';
import type { Reporter } from './report.js';
import type { RegistryOptions } from '../registry/connect.js';
import { resolveInput } from './inputs.js';
import { toJson } from './json.js';

export interface HaveOptions extends EngineChoice, RegistryOptions {
  json?: boolean;
}

/** `ddiff have [ARCHIVE…]`: every local image (or the given archives/references) and its diffIDs. */
export async function have(inputs: string[], options: HaveOptions, report: Reporter): Promise<void> {
  const images: HaveList['images'] = [];
  if (inputs.length === 0) {
    const engine = chooseEngine(options);
    for (const image of await engine.localImages()) {
      images.push({ id: image.id, tags: image.tags, diffIds: image.diffIds, source: engine.name });
    }
  }
  for (const input of inputs) {
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
  if (options.json || !process.stdout.isTTY) {
    report.out(toJson(list));
    return;
  }
  const layers = new Set(images.flatMap((i) => i.diffIds));
  report.out(`${images.length} image(s), ${layers.size} distinct layer(s); use --json > have.json to save the list`);
}
