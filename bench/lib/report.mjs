// One result line per benchmark, collected by bench/run.js into the markdown table it prints at the end (the
// README's Benchmarks table is pasted from that table). Each figure is stated with the baseline it was measured
// against in the same run, so a busy machine shifts both alike.
//   report({ name, measures, figure, baseline, target, met })
//   met: true / false against the target, or null when the benchmark has no target.
export const MARK = '##bench-result ';

export function report(row) {
  process.stdout.write(`${MARK}${JSON.stringify(row)}\n`);
}
