/**
 * Value decoding as the AWS CLI does it (docs/aws-cli-parsing.md §2.4): parameter files (`file://`, `fileb://`; v1 would also
 * fetch `http(s)://`, which guard-aws refuses), then JSON or shorthand for structured arguments.
 * Files are read through the injected context (ctx.fileContents on the broker), so parameters hidden in them
 * are seen by the policy.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { GuardError } from '../errors.js';
import type { BlobDigest, InvocationContext, LocalFile } from './types.js';

export interface DecodeState {
  ctx: InvocationContext;
  files: LocalFile[];
  notes: string[];
  /** CLI-only arguments (no API member), decoded. */
  cliArgs: Record<string, unknown>;
}

const show = (text: string) => JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);

export function parseError(message: string, details: Record<string, unknown> = {}): GuardError {
  return new GuardError('parse', message, { details });
}

/** `~` and `$VAR`/`${VAR}` expansion as Python's os.path.expanduser + os.path.expandvars (paramfile.py). */
export function expandPath(raw: string, ctx: InvocationContext, where: string): string {
  const env = ctx.env ?? process.env;
  let path = raw;
  if (path === '~' || path.startsWith('~/')) {
    const home = env.HOME;
    if (!home) throw parseError(`${where}: cannot expand ~ in ${show(raw)}: HOME is not set`);
    path = home + path.slice(1);
  } else if (path.startsWith('~')) {
    // ~user needs the password database; refuse rather than guess which file the CLI would read.
    throw parseError(`${where}: ~user paths are not supported in ${show(raw)}`);
  }
  // An unset variable stays as written, as os.path.expandvars leaves it.
  path = path.replace(/\$(\w+)|\$\{([^}]*)\}/g, (reference, bare: string | undefined, braced: string | undefined) => {
    const value = env[(bare ?? braced)!];
    return value === undefined ? reference : value;
  });
  return isAbsolute(path) ? path : resolve(ctx.cwd ?? process.cwd(), path);
}

function readLocal(rawPath: string, state: DecodeState, argument: string, where: string): Buffer {
  const path = expandPath(rawPath, state.ctx, where);
  state.files.push({ path, mode: 'read', argument });
  const provided = state.ctx.fileContents;
  if (provided) {
    const content = provided[rawPath] ?? provided[path];
    if (content === undefined && state.ctx.blob?.(path)) {
      throw parseError(`${where}: ${show(rawPath)} was sent as a digest only, but the call reads it where the decision needs its contents (only a whole fileb:// value of a blob parameter can be sent that way)`);
    }
    if (content === undefined) throw parseError(`${where}: file ${show(rawPath)} was not provided with the request`);
    return Buffer.from(content, 'utf8');
  }
  try {
    return (state.ctx.readFile ?? readFileSync)(path);
  } catch (e) {
    throw parseError(`${where}: cannot read ${show(rawPath)}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

const PREFIX_RE = /^(file|fileb|https?):\/\//i;

/**
 * Applies the CLI's paramfile rule to one raw value. Returns the loaded text (or base64 for fileb://), or the
 * value unchanged. `literal` arguments (PARAMFILE_DISABLED) keep URLs and file:// as plain text.
 */
export function loadParamFile(raw: string, literal: boolean, state: DecodeState, argument: string, where: string): string {
  if (literal) return raw;
  const prefix = PREFIX_RE.exec(raw);
  if (!prefix) return raw;
  const scheme = prefix[1]!;
  if (scheme !== scheme.toLowerCase()) {
    // The CLI matches prefixes case-sensitively; a mixed-case prefix is sent literally there but would be a
    // parser differential here. Refuse instead of guessing.
    throw parseError(`${where}: mixed-case ${show(prefix[0])} prefix is not accepted`);
  }
  if (scheme === 'http' || scheme === 'https') {
    // AWS CLI v2 has no remote prefixes (its paramfile.py maps only file:// and fileb://): the URL is the value,
    // sent as written (`sqs send-message --queue-url https://…`, `iam create-open-id-connect-provider --url https://…`).
    if (state.ctx.cliVersion === 'v2') return raw;
    // AWS CLI v1 fetches the URL and sends its content (paramfile.py REMOTE_PREFIX_MAP): unseen, changeable
    // input and a request from the caller's machine. Refused (docs/aws-cli-parsing.md §6.1 vector 15).
    throw parseError(`${where}: remote parameter value ${show(raw)} is refused (the CLI would fetch it)`);
  }
  const data = readLocal(raw.slice(prefix[0].length), state, argument, where);
  return scheme === 'fileb' ? data.toString('base64') : data.toString('utf8');
}

/**
 * What the decision sees of a blob sent as a digest only. `<`, `:` and spaces are outside the base64 alphabet, so
 * no fileb:// contents (which the parse turns into base64) can ever read as a stand-in.
 */
export function blobStandIn(d: BlobDigest): string {
  return `<blob sha256:${d.sha256} size:${d.size}>`;
}

const STAND_IN_RE = /^<blob sha256:[0-9a-f]{64} size:\d+>$/;

export function isBlobStandIn(value: unknown): boolean {
  return typeof value === 'string' && value.length < 100 && STAND_IN_RE.test(value);
}

/**
 * A blob-typed parameter's value (model type B): a whole `fileb://` value whose file the context hands over as a
 * digest (InvocationContext.blob) reads as its stand-in; anything else loads as loadParamFile does.
 */
export function loadBlobParam(raw: string, literal: boolean, state: DecodeState, argument: string, where: string): string {
  if (!literal && state.ctx.blob && raw.startsWith('fileb://')) {
    const path = expandPath(raw.slice('fileb://'.length), state.ctx, where);
    const digest = state.ctx.blob(path);
    if (digest) {
      state.files.push({ path, mode: 'read', argument, digest });
      return blobStandIn(digest);
    }
  }
  return loadParamFile(raw, literal, state, argument, where);
}

/**
 * How deeply a decoded parameter value (JSON, YAML, shorthand) may nest. Every walker over parameters (ARN
 * derivation, risk signals, masking, the parse cache's copy and freeze) recurses, so an unbounded depth is a
 * stack overflow: an HTTP 500 on the broker with no refusal recorded. The bound is the parser's, applied while
 * decoding, so no walker ever sees a deeper value. 100 is well past any real input: DynamoDB, whose documents
 * nest deepest, allows 32 levels of nested attributes (Amazon DynamoDB Developer Guide, "Service, account, and
 * table quotas": nested attribute depth), which is at most 66 JSON levels ({"M": {…}} per level, plus the item
 * and the attribute); the CLI itself decodes with Python's json and its own recursive shorthand parser, which
 * fail past the interpreter's recursion limit (1000 frames by default). Documented in docs/aws-cli-parsing.md §2.4.
 */
export const MAX_VALUE_DEPTH = 100;

function tooDeep(where: string, what: string): GuardError {
  return parseError(`${where}: ${what} nests deeper than ${MAX_VALUE_DEPTH} levels`, { reason: 'too_deep', maxDepth: MAX_VALUE_DEPTH });
}

/**
 * The nesting depth of JSON text, counted without recursion (brackets outside strings), so a document is
 * refused before JSON.parse builds it and before anything walks it. Returns MAX_VALUE_DEPTH + 1 as soon as
 * the limit is passed. Malformed text is left to JSON.parse to report.
 */
export function jsonTextDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) deepest = depth;
      if (deepest > MAX_VALUE_DEPTH) return deepest;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** The nesting depth of a decoded value, counted with an explicit stack (no recursion). */
export function valueDepth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (!node || typeof node !== 'object' || ArrayBuffer.isView(node)) continue;
    const level = depth + 1;
    if (level > deepest) deepest = level;
    if (deepest > MAX_VALUE_DEPTH) return deepest;
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push([child, level]);
  }
  return deepest;
}

export function parseJson(text: string, where: string): unknown {
  if (jsonTextDepth(text) > MAX_VALUE_DEPTH) throw tooDeep(where, 'JSON value');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw parseError(`${where}: invalid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

let yamlParse: ((text: string) => unknown) | undefined;
/** YAML for v2's --cli-input-yaml; the yaml package is loaded only when needed (start-up cost). */
export function parseYaml(text: string, where: string): unknown {
  // node:module through process.getBuiltinModule, not a static import: the ES module namespace of a built-in reads
  // all of its exports, which loads node:module's source-map support on every call's start-up.
  if (!yamlParse) yamlParse = (process.getBuiltinModule('node:module').createRequire(import.meta.url)('yaml') as { parse: (t: string) => unknown }).parse;
  // Flow collections nest like JSON ([[[…]]]); block collections nest by indentation. Flow text is counted
  // before parsing; the parsed document is counted too (block nesting, aliases).
  if (jsonTextDepth(text) > MAX_VALUE_DEPTH) throw tooDeep(where, 'YAML value');
  let doc: unknown;
  try {
    doc = yamlParse(text);
  } catch (e) {
    throw parseError(`${where}: invalid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (valueDepth(doc) > MAX_VALUE_DEPTH) throw tooDeep(where, 'YAML value');
  return doc;
}

// ------------------------------------------------------------------------------------------------ shorthand
// Grammar of awscli/shorthand.py (docs/aws-cli-parsing.md §2.4): keyval *("," keyval); key ["@"] "=" values; values are a
// csv list, an explicit [list] or a {hash}; quoted or bare scalars with backslash escapes.
// Sticky: tests "key=" right after a comma without copying the rest of the string.
const NEXT_KEY = /\s*[A-Za-z0-9\-_.#/:]+\s*@?=/y;

class Shorthand {
  private i = 0;
  /** Open [lists and {hashes} around the current position (awscli's shorthand parser recurses the same way). */
  private depth = 1;
  constructor(
    private readonly s: string,
    private readonly st: DecodeState,
    private readonly argument: string,
    private readonly where: string,
  ) {}

  private fail(msg: string): never {
    throw parseError(`${this.where}: invalid shorthand at character ${this.i}: ${msg}`);
  }

  parse(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.keyvals(out, false);
    if (this.i < this.s.length) this.fail(`unexpected ${show(this.s.slice(this.i, this.i + 10))}`);
    return out;
  }

  private ws() {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }

  private keyvals(out: Record<string, unknown>, inHash: boolean) {
    for (;;) {
      this.ws();
      const km = /^[A-Za-z0-9\-_.#/:]+/.exec(this.s.slice(this.i));
      if (!km) this.fail('expected a key');
      const key = km[0];
      this.i += key.length;
      this.ws();
      let load = false;
      if (this.s[this.i] === '@') {
        load = true;
        this.i++;
      }
      if (this.s[this.i] !== '=') this.fail(`expected "=" after ${show(key)}`);
      this.i++;
      this.ws();
      if (Object.prototype.hasOwnProperty.call(out, key)) this.fail(`duplicate key ${show(key)}`);
      let v = inHash ? this.value(true) : this.values();
      if (load) v = this.loadFiles(v);
      out[key] = v;
      this.ws();
      if (this.s[this.i] !== ',') return;
      this.i++;
    }
  }

  private loadFiles(v: unknown): unknown {
    if (typeof v === 'string' && /^fileb?:\/\//.test(v)) return loadParamFile(v, false, this.st, this.argument, this.where);
    if (Array.isArray(v)) return v.map((x) => this.loadFiles(x));
    return v;
  }

  private values(): unknown {
    const c = this.s[this.i];
    if (c === '[') return this.explicitList();
    if (c === '{') return this.hash();
    // csv-list: first-value *("," second-value); stops (backtracks) at a "," followed by "key=".
    const first = this.scalar(false);
    const list: string[] = [first];
    while (this.s[this.i] === ',') {
      NEXT_KEY.lastIndex = this.i + 1;
      if (NEXT_KEY.test(this.s)) break;
      this.i++;
      this.ws();
      list.push(this.scalar(false));
    }
    return list.length === 1 ? first : list;
  }

  private value(inHash: boolean): unknown {
    const c = this.s[this.i];
    if (c === '[') return this.explicitList();
    if (c === '{') return this.hash();
    return this.scalar(inHash);
  }

  private enter(): void {
    if (++this.depth > MAX_VALUE_DEPTH) throw tooDeep(this.where, 'shorthand value');
  }

  private explicitList(): unknown[] {
    this.i++;
    this.enter();
    const out: unknown[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      this.depth--;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(true));
      this.ws();
      if (this.s[this.i] === ',') {
        this.i++;
        continue;
      }
      if (this.s[this.i] === ']') {
        this.i++;
        this.depth--;
        return out;
      }
      this.fail('expected "," or "]"');
    }
  }

  private hash(): Record<string, unknown> {
    this.i++;
    this.enter();
    const out: Record<string, unknown> = {};
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      this.depth--;
      return out;
    }
    this.keyvals(out, true);
    this.ws();
    if (this.s[this.i] !== '}') this.fail('expected "}"');
    this.i++;
    this.depth--;
    return out;
  }

  private scalar(inContainer: boolean): string {
    const q = this.s[this.i];
    if (q === '"' || q === "'") {
      let out = '';
      this.i++;
      while (this.i < this.s.length && this.s[this.i] !== q) {
        if (this.s[this.i] === '\\' && this.i + 1 < this.s.length) this.i++;
        out += this.s[this.i++];
      }
      if (this.s[this.i] !== q) this.fail('unterminated quoted value');
      this.i++;
      return out;
    }
    let out = '';
    const stop = inContainer ? ',]}' : ',';
    while (this.i < this.s.length && !stop.includes(this.s[this.i]!)) {
      if (!inContainer && (this.s[this.i] === '[' || this.s[this.i] === '{') && out === '') break;
      if (this.s[this.i] === '\\' && this.i + 1 < this.s.length) {
        this.i++;
      }
      out += this.s[this.i++];
    }
    return out.replace(/\s+$/, '');
  }
}

export function parseShorthand(text: string, st: DecodeState, argument: string, where: string): Record<string, unknown> {
  return new Shorthand(text, st, argument, where).parse();
}

/** Decodes a structured value (type S/L/d/l element): JSON when it starts with { or [, else shorthand. */
export function decodeStructured(text: string, st: DecodeState, argument: string, where: string): unknown {
  const t = text.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) return parseJson(text, where);
  if (!/[=]/.test(text)) return text; // e.g. a structure with a single Value member accepts a bare value
  return parseShorthand(text, st, argument, where);
}
