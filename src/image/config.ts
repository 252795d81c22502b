import { ConfigError } from '../errors.js';
import { isDigest, type Digest } from '../util/digest.js';
import { isRecord } from '../util/json.js';
import type { HistoryEntry, Platform } from './image.js';

/** The parts of an image config (OCI / Docker) that ddiff uses. */
interface ImageConfig {
  diffIds: Digest[];
  platform: Platform;
  history: HistoryEntry[];
}

export function parseConfig(json: unknown): ImageConfig {
  if (!isRecord(json)) throw new ConfigError('config is not a JSON object');
  const rootfs = json.rootfs;
  if (!isRecord(rootfs) || !Array.isArray(rootfs.diff_ids)) throw new ConfigError('config has no rootfs.diff_ids');
  const diffIds = rootfs.diff_ids.map((id, i) => {
    if (!isDigest(id)) throw new ConfigError(`config rootfs.diff_ids[${i}] is not a sha256 digest`);
    return id;
  });
  const platform: Platform = {
    os: typeof json.os === 'string' ? json.os : 'unknown',
    architecture: typeof json.architecture === 'string' ? json.architecture : 'unknown',
  };
  if (typeof json.variant === 'string' && json.variant) platform.variant = json.variant;
  const history: HistoryEntry[] = Array.isArray(json.history)
    ? json.history.filter(isRecord).map((h) => {
        const entry: HistoryEntry = {
          createdBy: typeof h.created_by === 'string' ? h.created_by : '',
          emptyLayer: h.empty_layer === true,
        };
        if (typeof h.created === 'string') entry.created = h.created;
        return entry;
      })
    : [];
  return { diffIds, platform, history };
}

/**
 * The created-by line of each layer: history entries are matched to layers in order,
 * skipping those marked `empty_layer` (which made no layer). Undefined when history is short.
 */
export function layerCreators(config: ImageConfig): (string | undefined)[] {
  const producing = config.history.filter((h) => !h.emptyLayer);
  return config.diffIds.map((_, i) => producing[i]?.createdBy);
}
