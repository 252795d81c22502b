import { UsageError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import type { Layer } from './layer.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface HistoryEntry {
  createdBy: string;
  created?: string;
  emptyLayer: boolean;
}

/** One image, whatever layout it was read from. */
export interface Image {
  tags: string[];
  /** Image ID: digest of the config bytes exactly as stored. */
  id: Digest;
  platform: Platform;
  configBytes: Buffer;
  /** Digest of the registry manifest, when the archive has one (OCI layouts). */
  manifestDigest?: Digest;
  layers: Layer[];
  history: HistoryEntry[];
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

export function parsePlatform(text: string): Platform {
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture) throw new UsageError(`platform '${text}' is not of the form os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}
