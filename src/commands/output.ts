import type { Reporter } from './report.js';

/**
 * Where the summary goes: stdout, unless stdout carries the data itself (`-o -`); then stderr,
 * so the bundle or archive stream stays byte-exact (`diff -o - --json 2>summary.json | ssh …`).
 */
export function summaryChannel(output: string | undefined, report: Reporter): (text: string) => void {
  return output === '-' ? report.warn : report.out;
}

/** Where the one-line summary goes (as summaryChannel), or nowhere with -q. */
export function summaryLine(output: string | undefined, report: Reporter): (text: string) => void {
  return report.quiet ? () => undefined : summaryChannel(output, report);
}
