/**
 * Layer deltas: a target layer tar written as verbatim tar bytes plus, per regular file, a
 * reference to an identical base file, a binary delta against a similar one, or its literal
 * content (format.ts). Streaming, bounded memory on both sides.
 */
export type { BaseBytes, DeltaBase } from './base-bytes.js';
export { type BaseFile, BaseFileIndex, type BaseLayer } from './base-index.js';
export { type DecodeOptions, type DecodeResult, decodeLayerDelta, verifyLayerDelta } from './decode.js';
export { type EncodeOptions, type EncodeStats, encodeLayerDelta } from './encode.js';
export { DeltaCorruptError, DeltaFormatError, DeltaLimitError, DeltaReferenceError } from './errors.js';
export { SpooledBase } from './spool.js';
export { deserializeIndex, serializeIndex } from './serialize.js';
