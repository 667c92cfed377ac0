import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { ApprovalParameter } from '../api/types.js';
import { canonicalJson } from '../canonical-json/canonical-json.js';
import type { ParsedInvocation } from '../invocation/types.js';
import type { MaskingRules } from '../policy/types.js';
import { isSecretKey, MASK, maskStructuredValue, SECRET_OPTIONS } from '../masking/argv.js';
import { compileMasking, maskText } from '../masking/index.js';

/**
 * What an approver is shown of a call's parameters: the decoded API parameters the broker parsed and bound the
 * approval to (binding.ts hashes the same `params`), not the argv alone, which hides what matters behind
 * `file://`, `--cli-input-json` and base64. Per top-level API member:
 * - text as it will be sent; structures as indented JSON;
 * - `UserData` (ec2 run-instances, launch templates, modify-instance-attribute) and `fileb://` contents, which
 *   travel base64-encoded, decoded: to text when they are UTF-8 (gzip first undone, as cloud-init does), else
 *   "binary, N bytes";
 * - where a value came from: a `file://` path, or `--cli-input-json`;
 * - secret-typed members (passwords, secret strings, private keys, tokens: the argv masking's list and name
 *   shapes) masked, and secret-named keys inside structures masked. User-data is *not* secret-typed: an approver
 *   must read the boot script they let run. Secrets recognisable inside any shown text (access keys, private
 *   keys, tokens: the output masking rules) are masked there too.
 * Each value is bounded (MAX_VALUE_CHARS, and MAX_TOTAL_CHARS for all of them): a longer one is cut with a
 * marker saying so, and every entry carries the size and SHA-256 of the full value, so even a cut value is
 * pinned to exactly what the approval binds.
 */

/** Characters of one shown value; a longer value is cut and marked. */
export const MAX_VALUE_CHARS = 4000;
/** Characters of all shown values together; past it, the remaining values are listed without content. */
export const MAX_TOTAL_CHARS = 16_000;
/** Largest gzip expansion decoded for display (a decompression bomb is reported, not expanded). */
const MAX_GUNZIP_BYTES = 1024 * 1024;

/** A blob stand-in (src/invocation/values.ts blobStandIn): its digest and size. */
const BLOB_STAND_IN = /^<blob sha256:([0-9a-f]{64}) size:(\d+)>$/;

/** Members whose value is base64 on the wire and worth decoding for a person. */
const BASE64_MEMBERS = new Set(['UserData']);

/**
 * Whether the caller wrote this member base64-encoded. RunInstances' own UserData is the exception: botocore
 * encodes it (handlers.py `base64_encode_user_data`), so what the caller wrote is what the instance gets and is
 * shown as written. A launch template's or spot request's UserData the caller must encode: decoded for display.
 */
function travelsAsBase64(name: string, inv: Pick<ParsedInvocation, 'operation'>): boolean {
  if (!BASE64_MEMBERS.has(name.replace(/^.*\./, ''))) return false;
  return !(name === 'UserData' && inv.operation === 'RunInstances');
}

/** Option names of SECRET_OPTIONS that are shown anyway: the approver must see the boot script. */
const SHOWN_ANYWAY = new Set(['--user-data', '--cli-input-yaml']);

const flat = (name: string) => name.replace(/^-+/, '').replace(/[-_]/g, '').toLowerCase();
const SECRET_OPTION_MEMBERS = new Set(Object.keys(SECRET_OPTIONS).filter((o) => !SHOWN_ANYWAY.has(o)).map(flat));

/** botocore's xform_name: `UserData` → `user-data`, `DBInstanceIdentifier` → `db-instance-identifier`. */
function optionName(member: string): string {
  return member
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();
}

function isSecretMember(member: string, inv: Pick<ParsedInvocation, 'operation'>): boolean {
  if (member === 'UserData') return false;
  if (member === 'Value' && inv.operation === 'PutParameter') return true; // ssm: the parameter's value (argv.ts)
  return isSecretKey(member) || SECRET_OPTION_MEMBERS.has(flat(member));
}

const compiled = new WeakMap<object, ReturnType<typeof compileMasking>>();
const NO_RULES = {};
/**
 * Secrets inside shown text, by the output masker's patterns (access keys, PEM private keys, tokens…) plus the
 * policy files' own masking fields and patterns, as a run's output would be masked.
 */
function maskSecretsIn(text: string, rules: Partial<MaskingRules> | undefined): string {
  const key = rules ?? NO_RULES;
  let c = compiled.get(key);
  if (!c) compiled.set(key, (c = compileMasking(rules ? { rules } : {})));
  return maskText(c, text);
}

/** Text when the bytes are UTF-8 without controls other than layout; undefined for binary. */
function asText(bytes: Buffer): string | undefined {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u0008\u000e-\u001f\u007f]/.test(text) ? undefined : text;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A base64 value decoded for display, or undefined when it is not base64. */
function decodeBase64(value: string): { text?: string; note: string; bytes: number } | undefined {
  const compact = value.replace(/\s+/g, '');
  if (compact.length < 4 || !BASE64.test(compact)) return undefined;
  let bytes = Buffer.from(compact, 'base64');
  let note = 'base64, decoded';
  if (bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    // gzip (RFC 1952 magic): cloud-init accepts compressed user-data; a script must not hide in it.
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: MAX_GUNZIP_BYTES });
      note = 'base64 and gzip, decoded';
    } catch {
      return { note: `base64 of gzip data that does not expand within ${MAX_GUNZIP_BYTES} bytes`, bytes: bytes.length };
    }
  }
  const text = asText(bytes);
  return text === undefined ? { note: `${note}: binary`, bytes: bytes.length } : { text, note, bytes: bytes.length };
}

/** Where a member's value came from, as far as the invocation records it. */
function sourceOf(member: string, inv: Pick<ParsedInvocation, 'files' | 'canonicalArgv'>): { source?: string; fileb?: boolean } {
  const option = `--${optionName(member)}`;
  const file = inv.files.find((f) => f.mode === 'read' && f.argument === option);
  const given = inv.canonicalArgv.some((t) => t === option || t.startsWith(`${option}=`));
  if (file) {
    const raw = inv.canonicalArgv[inv.canonicalArgv.indexOf(option) + 1] ?? '';
    return { source: `file ${file.path}`, fileb: raw.startsWith('fileb://') };
  }
  if (!given) {
    const input = inv.canonicalArgv.find((t) => t === '--cli-input-json' || t === '--cli-input-yaml');
    if (input) {
      const file = inv.files.find((f) => f.argument === input);
      return { source: file ? `${input} (file ${file.path})` : input };
    }
  }
  return {};
}

/** `path` → string value of every BASE64_MEMBERS key inside a structure (iterative; values are depth-bounded by the parser). */
function nestedBase64(root: string, value: unknown): [string, string][] {
  if (!value || typeof value !== 'object') return [];
  const found: [string, string][] = [];
  const stack: [string, unknown][] = [[root, value]];
  while (stack.length) {
    const [path, node] = stack.pop()!;
    if (Array.isArray(node)) node.forEach((v, i) => stack.push([`${path}[${i}]`, v]));
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (BASE64_MEMBERS.has(k) && typeof v === 'string') found.push([`${path}.${k}`, v]);
        else stack.push([`${path}.${k}`, v]);
      }
    }
  }
  return found.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** SHA-256 of the full value: of the text itself for a string (so `sha256sum` of a file:// source matches), else of its canonical JSON (RFC 8785). */
function sha256(value: unknown): string {
  const bytes = typeof value === 'string' ? value : canonicalJson(value, { bytes: 'tagged', dates: 'iso' });
  return createHash('sha256').update(bytes, 'utf8').digest('hex');
}

/**
 * The decoded parameters of a parsed call, as approvers are shown them (and as they are stored with the request
 * and copied into the audit record of the run). Ordered by member name.
 */
export function shownParameters(
  inv: Pick<ParsedInvocation, 'params' | 'operation' | 'files' | 'canonicalArgv'>,
  masking?: Partial<MaskingRules>,
): ApprovalParameter[] {
  const out: ApprovalParameter[] = [];
  let budget = MAX_TOTAL_CHARS;
  const members: [string, unknown][] = [];
  for (const name of Object.keys(inv.params ?? {}).sort()) {
    members.push([name, inv.params[name]]);
    // Base64 members inside structures (a launch template's LaunchTemplateData.UserData) get an entry of their
    // own, decoded, after the structure that holds them.
    members.push(...nestedBase64(name, inv.params[name]));
  }
  for (const [name, raw] of members) {
    const { source, fileb } = sourceOf(name.split(/[.[]/)[0]!, inv);
    const full = typeof raw === 'string' ? raw : JSON.stringify(raw, null, 2) ?? String(raw);
    const entry: ApprovalParameter = { name, value: '', bytes: Buffer.byteLength(full, 'utf8'), sha256: sha256(raw) };
    if (source) entry.source = source;
    if (isSecretMember(name.split(/[.[]/)[0]!, inv)) {
      entry.value = MASK;
      entry.masked = true;
      out.push(entry);
      continue;
    }
    let text: string | undefined;
    const blob = typeof raw === 'string' ? BLOB_STAND_IN.exec(raw) : null;
    if (blob) {
      // A large fileb:// blob the broker saw as its digest only (request `blobs`): the approver sees the digest
      // the approval binds and the run is held to, and its real size.
      entry.value = `(binary, ${blob[2]} bytes, SHA-256 ${blob[1]}; sent as its digest only)`;
      entry.encoding = 'digest only';
      entry.bytes = Number(blob[2]);
      entry.sha256 = blob[1]!;
      out.push(entry);
      continue;
    }
    if (typeof raw === 'string') {
      const decoded = fileb || travelsAsBase64(name, inv) ? decodeBase64(raw) : undefined;
      if (decoded) {
        entry.encoding = decoded.note;
        entry.bytes = decoded.bytes;
        text = decoded.text;
        if (text === undefined) entry.value = `(binary, ${decoded.bytes} bytes)`;
      } else text = raw;
    } else if (raw === null || typeof raw !== 'object') {
      text = String(raw);
    } else {
      // Secret-named keys inside the structure are masked as in the argv (argv.ts), then indented for reading.
      const masked = maskStructuredValue(JSON.stringify(raw));
      text = JSON.stringify(JSON.parse(masked), null, 2);
    }
    if (text !== undefined) {
      const clean = maskSecretsIn(text, masking);
      if (clean !== text) entry.secretsMasked = true;
      const room = Math.max(0, Math.min(MAX_VALUE_CHARS, budget));
      if (clean.length > room) {
        entry.value = clean.slice(0, room);
        entry.truncated = true;
      } else entry.value = clean;
      budget -= entry.value.length;
    }
    out.push(entry);
  }
  return out;
}
