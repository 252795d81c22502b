import type { BundleMetadata } from '../bundle/format.js';

/**
 * The version of every command's `--json` shape (schemas/*.schema.json). Raised only by an
 * incompatible change; fields may be added without raising it.
 */
const SCHEMA_VERSION = 1;

/** A command's JSON document: `schemaVersion` first, then the command's fields. */
export function toJson(value: object): string {
  return JSON.stringify({ schemaVersion: SCHEMA_VERSION, ...value }, null, 2);
}

/** The base a bundle needs, in the one shape every command prints: `reference` null when none was named. */
export interface BaseJson {
  reference: string | null;
  ids: string[];
  tags: string[];
  needed: string[];
}

export function baseJson(base: BundleMetadata['base']): BaseJson {
  return { reference: base.reference ?? null, ids: base.ids, tags: base.tags, needed: base.needed };
}
