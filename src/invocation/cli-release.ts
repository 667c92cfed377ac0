/**
 * Which command table reads an argv for a given AWS CLI release, and whether that is safe
 * (docs/aws-cli-parsing.md §6.3). Shared by the client (for the aws it will run) and the broker (for the release
 * the client says will run), so both decide with the same table.
 *
 * The rule:
 *  - the major release picks the table (1 → data/aws-model, 2 → data/aws-model-v2); any other major is refused;
 *  - the same minor release as the table (any patch): read as the table reads it;
 *  - a newer minor release: accepted, because AWS only adds to a major release's models and customisations, and
 *    guard-aws runs the canonical argv (full option names, one token per value), which the newer CLI reads
 *    exactly as the table does: argparse takes an exact option name before any prefix match. What the newer
 *    CLI has and the table lacks (new commands, operations, options) is refused as unknown. Abbreviations are
 *    refused (the caller may mean one of the new options), so `exactOptionNames` is set;
 *  - an older minor release: refused. The table may have options the older CLI lacks, and there a full name
 *    from the table can be a prefix of another option (`--tag` of `--tags`) and be read as that one.
 */
import { GuardError } from '../errors.js';
import { type CliTable, modelIndex } from './model.js';

export interface CliRelease {
  /** The release that will run (`2.31.4`). */
  version: string;
  table: CliTable;
  /** The release the table was generated from (`2.9.19`). */
  tableVersion: string;
  /** True when the CLI is a newer minor release than the table: abbreviations are refused. */
  exactOptionNames: boolean;
}

const VERSION = /^(\d+)\.(\d+)\.(\d+)$/;

/** Table versions by major; injectable for tests. */
export type TableVersions = Partial<Record<'1' | '2', string>>;
/** The shipped table for one major: only that major's index is read (every guarded call comes through here). */
const shipped = (major: '1' | '2'): string => modelIndex(major === '1' ? 'v1' : 'v2').cliVersion;

export function cliRelease(version: string, tables?: TableVersions): CliRelease {
  const m = VERSION.exec(version);
  if (!m) throw new GuardError('config_invalid', `${JSON.stringify(version)} is not an AWS CLI version (MAJOR.MINOR.PATCH)`);
  const major = m[1]!;
  const tableVersion = major === '1' || major === '2' ? (tables ? tables[major] : shipped(major)) : undefined;
  if (!tableVersion) {
    throw new GuardError('config_invalid', `aws-cli/${version}: guard-aws has command tables for AWS CLI v1 and v2 only; point GUARD_AWS_AWS_BIN at an AWS CLI v2 (or v1)`);
  }
  const minor = Number(m[2]);
  const tableMinor = Number(VERSION.exec(tableVersion)![2]);
  if (minor < tableMinor) {
    throw new GuardError(
      'config_invalid',
      `aws-cli/${version} is older than the release guard-aws's command tables describe (aws-cli/${tableVersion}), and could read an option differently; upgrade the AWS CLI to ${major}.${tableMinor} or later, or regenerate the tables with it installed (\`npm run gen:aws-model\`)`,
    );
  }
  return { version, table: major === '1' ? 'v1' : 'v2', tableVersion, exactOptionNames: minor > tableMinor };
}

/**
 * The broker names the table it decided with (`cliTable` in the grant). It must be the table of the major release
 * that will run: one of another major (an older broker that knows only v1) decided on an argv this aws reads
 * differently, and a grant that names none cannot show it used the right one. Either way nothing runs.
 */
export function assertGrantTable(cliTable: string | undefined, version: string): void {
  if (!cliTable || cliTable.split('.')[0] !== version.split('.')[0]) {
    throw new GuardError(
      'config_invalid',
      `the broker decided with ${cliTable ? `the tables of aws-cli/${cliTable}` : 'unnamed command tables'}, but aws-cli/${version} would run; upgrade the broker`,
    );
  }
}
