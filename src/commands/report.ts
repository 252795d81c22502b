/** Where a command's output goes: results to stdout, warnings to stderr. */
export interface Reporter {
  out: (text: string) => void;
  warn: (text: string) => void;
}
