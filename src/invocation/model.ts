/**
 * The generated CLI model (data/aws-model/, from the installed AWS CLI's own argument tables, see
 * scripts/dump-cli-model.py), decoded lazily per command and cached: `explain -- s3 ls` reads index.json only.
 */
import { readDataJson } from './data-files.js';

/** nargs as argparse has it: 0 flag, 1 one value, '?' optional value, '*' / '+' lists, N exactly N. */
export type Nargs = 0 | 1 | '?' | '*' | '+' | number;

export interface ArgSpec {
  /** CLI name without dashes (`bucket`, `no-dry-run`). */
  name: string;
  /** API member it fills (`Bucket`), null for CLI-only arguments. */
  member: string | null;
  /**
   * Value kind: s string/timestamp, i integer, f float, b boolean flag, B blob, P streaming blob (a file path),
   * S structure/map (JSON or shorthand), l list of scalars, L list of structures, d document.
   */
  type: string;
  nargs: Nargs;
  /** True when file:// and http(s):// values are passed literally (PARAMFILE_DISABLED / no_paramfile). */
  literal: boolean;
  /** For boolean flags: the value stored (`--x` true, `--no-x` false). */
  flagValue?: boolean;
}

export interface ArgTable {
  options: Map<string, ArgSpec>;
  /** Option names (without dashes) for unique-prefix matching. */
  names: string[];
  positionals: ArgSpec[];
}

export interface OperationModel {
  cli: string;
  /** API operation name (`ListObjectsV2`). */
  api: string;
  args: ArgTable;
  paginated: boolean;
  /** HTTP method and request URI (API Gateway's IAM actions are the HTTP verb on the path). */
  http?: [string, string];
}

export interface CustomModel {
  args: ArgTable;
  sub?: Record<string, RawCustom>;
}

type RawArg = string | [string, Nargs, string | null, string];
interface RawCustom {
  a: RawArg[];
  pos?: RawArg[];
  sub?: Record<string, RawCustom>;
  error?: string;
}
interface RawOp {
  o: string;
  a: string[];
  pos?: string[];
  pg?: 1;
  nj?: 1;
  h?: [string, string];
}
interface RawCommandFile {
  service: string;
  prefix: string | null;
  ops: Record<string, RawOp>;
  custom: Record<string, RawCustom>;
  waiters: Record<string, string>;
}
interface RawIndex {
  cliVersion: string;
  botocoreVersion: string;
  globals: [string, Nargs][];
  commands: Record<string, { service?: string; prefix?: string | null; file?: string; local?: boolean; custom?: RawCustom }>;
}

export interface CommandModel {
  command: string;
  service: string;
  /** IAM prefix (SAR), null when SAR has no prefix for this service (fail closed). */
  prefix: string | null;
  operation(cli: string): OperationModel | undefined;
  /** API operation name → CLI name (for waiters). */
  cliNameOf(api: string): string | undefined;
  custom: Record<string, RawCustom>;
  waiters: Record<string, string>;
  operationNames(): string[];
}

/**
 * Which generated table: AWS CLI v1's (data/aws-model/) or v2's (data/aws-model-v2/). v2 has its own models
 * and customisations (ddb, v2-only options, no URL parameter fetching), so each major release is read with
 * its own table, chosen by the CLI that will run (src/runner/cli-version.ts, docs/aws-cli-parsing.md §6.3).
 */
export type CliTable = 'v1' | 'v2';
export const CLI_TABLES: readonly CliTable[] = ['v1', 'v2'];
const TABLE_DIR: Record<CliTable, string> = { v1: 'aws-model', v2: 'aws-model-v2' };

const indexes = new Map<CliTable, RawIndex>();
const commands = new Map<string, CommandModel>();

export function modelIndex(table: CliTable = 'v1'): RawIndex {
  let index = indexes.get(table);
  if (!index) {
    index = readDataJson<RawIndex>(`${TABLE_DIR[table]}/index.json`);
    indexes.set(table, index);
  }
  return index;
}

const pascal = (cli: string) =>
  cli
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

function impliedNargs(type: string): Nargs {
  return type === 'b' ? 0 : type === 'l' || type === 'L' ? '*' : 1;
}

/**
 * One argument of the generated model: `name|member|type|nargs` (member empty: the PascalCase of the name; `-`:
 * none) or a tuple.
 */
function decodeArg(raw: RawArg): ArgSpec {
  let name: string;
  let member: string | null;
  let typeCode: string;
  let nargs: Nargs;
  if (typeof raw === 'string') {
    const parts = raw.split('|');
    name = parts[0]!;
    const memberField = parts[1];
    member = memberField === undefined || memberField === '' ? pascal(name) : memberField === '-' ? null : memberField;
    typeCode = parts[2] || 's';
    nargs = parts[3] === undefined ? impliedNargs(typeCode.replace('!', '')) : parseNargs(parts[3]);
  } else {
    [name, nargs, member, typeCode] = raw;
  }
  // A trailing `!`: file:// and http(s):// values are passed literally (the CLI's PARAMFILE_DISABLED).
  const literal = typeCode.endsWith('!');
  const type = literal ? typeCode.slice(0, -1) : typeCode;
  const spec: ArgSpec = { name, member, type, nargs, literal };
  if (type === 'b' && nargs === 0) spec.flagValue = !(name.startsWith('no-') && member !== null && pascal(name) !== member);
  return spec;
}

function parseNargs(field: string): Nargs {
  if (field === '?' || field === '*' || field === '+') return field;
  return Number(field);
}

function buildArgTable(raw: RawArg[], pos: RawArg[] = [], extra: ArgSpec[] = []): ArgTable {
  const options = new Map<string, ArgSpec>();
  for (const rawArg of raw) {
    const spec = decodeArg(rawArg);
    options.set(spec.name, spec);
  }
  for (const spec of extra) options.set(spec.name, spec);
  return { options, names: [...options.keys()], positionals: pos.map(decodeArg) };
}

const CLI_INPUT_JSON: ArgSpec = { name: 'cli-input-json', member: null, type: 's', nargs: 1, literal: false };
/** v2 only (awscli/customizations/cliinput.py on the v2 branch); refused on v1 by the parser. */
const CLI_INPUT_YAML: ArgSpec = { name: 'cli-input-yaml', member: null, type: 's', nargs: 1, literal: false };
const SKELETON: ArgSpec = { name: 'generate-cli-skeleton', member: null, type: 's', nargs: '?', literal: true };
const PAGINATION: ArgSpec[] = [
  { name: 'starting-token', member: null, type: 's', nargs: 1, literal: false },
  { name: 'page-size', member: null, type: 'i', nargs: 1, literal: false },
  { name: 'max-items', member: null, type: 'i', nargs: 1, literal: false },
];

const customTables = new WeakMap<RawCustom, ArgTable>();
export function customArgTable(raw: RawCustom): ArgTable {
  let table = customTables.get(raw);
  if (!table) {
    table = buildArgTable(raw.a, raw.pos ?? []);
    customTables.set(raw, table);
  }
  return table;
}

/** The command model for a CLI command name, or undefined when it is not a service command. */
export function commandModel(command: string, table: CliTable = 'v1'): CommandModel | undefined {
  const key = `${table}\0${command}`;
  const cached = commands.get(key);
  if (cached) return cached;
  const entry = modelIndex(table).commands[command];
  if (!entry?.file || !Object.prototype.hasOwnProperty.call(modelIndex(table).commands, command)) return undefined;
  const raw = readDataJson<RawCommandFile>(`${TABLE_DIR[table]}/${entry.file}`);
  const ops = new Map<string, OperationModel>();
  let byApi: Map<string, string> | undefined;
  const model: CommandModel = {
    command,
    service: raw.service,
    prefix: raw.prefix,
    custom: raw.custom,
    waiters: raw.waiters,
    operationNames: () => Object.keys(raw.ops),
    cliNameOf(api) {
      if (!byApi) {
        byApi = new Map();
        for (const [cli, op] of Object.entries(raw.ops)) if (!byApi.has(op.o) || cli.replace(/-/g, '') === op.o.toLowerCase()) byApi.set(op.o, cli);
      }
      return byApi.get(api);
    },
    operation(cli) {
      const hit = ops.get(cli);
      if (hit) return hit;
      if (!Object.prototype.hasOwnProperty.call(raw.ops, cli)) return undefined;
      const rawOp = raw.ops[cli]!;
      const extra: ArgSpec[] = [SKELETON];
      if (!rawOp.nj) extra.push(CLI_INPUT_JSON, CLI_INPUT_YAML);
      if (rawOp.pg) extra.push(...PAGINATION);
      const op: OperationModel = {
        cli,
        api: rawOp.o,
        args: buildArgTable(rawOp.a, rawOp.pos ?? [], extra),
        paginated: !!rawOp.pg,
        ...(rawOp.h ? { http: rawOp.h } : {}),
      };
      ops.set(cli, op);
      return op;
    },
  };
  commands.set(key, model);
  return model;
}
