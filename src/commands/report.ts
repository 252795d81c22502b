/** Where a command's output goes: results to stdout, warnings to stderr. */
export interface Reporter {
  out: (text: string) => void;
  warn: (text: string) => void;
  /** -q: no summary line ("Wrote …", "Loaded …"); results asked for (JSON, tables) still print. */
  quiet?: boolean;
}
