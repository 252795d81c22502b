import { ArchiveError, DigestMismatchError } from '../errors.js';

/**
 * Errors of the delta decoder. Each is an ArchiveError whose source is what the caller named
 * the delta (e.g. `app.ddiff: layer sha256:…`), so the CLI prints one line naming the layer.
 */

/** The delta stream is not one: bad magic, a newer version, an unknown or truncated record. */
export class DeltaFormatError extends ArchiveError {}

/** The delta asks the base for something it does not have: a layer, a file, a range past its end. */
export class DeltaReferenceError extends ArchiveError {}

/** A record declares more bytes than the limits allow (a delta that would expand enormously). */
export class DeltaLimitError extends ArchiveError {}

/** Reconstructed bytes do not hash to the digest the delta recorded for them (tampered or wrong base). */
export class DeltaCorruptError extends DigestMismatchError {}
