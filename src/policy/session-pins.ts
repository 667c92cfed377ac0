import { readDataJson } from '../invocation/data-files.js';
import type { ParsedInvocation, Permission } from '../invocation/types.js';

/**
 * What a grant's session policy can pin of a decision beyond actions and resources, shared by the builder
 * (src/broker/session-policy.ts, which writes the conditions) and the analysis of what that enforces
 * (src/policy/enforceable.ts, which must assume exactly the same pins): the region, and parameters that map to an
 * IAM condition key (data/session-condition-keys.json).
 */

/** The parts of the decided call the pins are computed from. */
export type PinnableInvocation = Pick<ParsedInvocation, 'region' | 'kind' | 'params' | 'cliArgs'>;

interface GlobalServicesTable {
  prefixes: string[];
}
let globalPrefixes: Set<string> | undefined;

/**
 * IAM prefixes of services whose requests are not evaluated in the region the caller names (generated from
 * botocore's endpoint model by scripts/gen-global-services.py). AWS documents that a global service with a single
 * endpoint (IAM is its example) is called in us-east-1, so its requests carry `aws:RequestedRegion` = us-east-1
 * whatever region the caller named (IAM User Guide, "AWS global condition context keys", aws:RequestedRegion).
 * Pinning the decided region there would deny every call outside us-east-1 for nothing, so they get none.
 */
export function isGlobalService(prefix: string): boolean {
  globalPrefixes ??= new Set(readDataJson<GlobalServicesTable>('global-services.json').prefixes);
  return globalPrefixes.has(prefix);
}

/**
 * Whether a permission's requests are held to the decided region by the session policy: a regional service's
 * statements carry `aws:RequestedRegion` = the decided region; a KMS permission used through another service is
 * held there by `kms:ViaService` (`s3.REGION.amazonaws.com`). Callers that did not pass the invocation get none.
 */
export function regionPinned(p: Pick<Permission, 'action' | 'viaService'>, region: string | undefined): boolean {
  if (region === undefined) return false;
  if (p.viaService !== undefined) return p.viaService.includes(`.${region}.`);
  return !isGlobalService(p.action.slice(0, p.action.indexOf(':')));
}

/** One entry of data/session-condition-keys.json (its `about` explains the fields). */
export interface ConditionKeyPin {
  actions: string[];
  param: string;
  cliArg?: string;
  key: string;
  type: 'Bool' | 'Numeric' | 'String';
  absent?: string;
  pinAbsent?: boolean;
  ifExists?: boolean;
  reference: string;
}
let pinTable: Map<string, ConditionKeyPin[]> | undefined;

/** The condition-key entries that apply to an action (SAR spelling), from data/session-condition-keys.json. */
export function conditionKeyPins(action: string): ConditionKeyPin[] {
  if (!pinTable) {
    pinTable = new Map();
    for (const pin of readDataJson<{ pins: ConditionKeyPin[] }>('session-condition-keys.json').pins) {
      for (const a of pin.actions) pinTable.set(a, [...(pinTable.get(a) ?? []), pin]);
    }
  }
  return pinTable.get(action) ?? [];
}

/**
 * A parameter pinned for one action: the condition that holds it, and every value a request the session policy
 * allows can carry for it (`undefined` = not sent). `policy/enforceable.ts` evaluates rules over exactly these.
 */
export interface ParamPin {
  pin: ConditionKeyPin;
  operator: string;
  value: string;
  /** Values a permitted request can have for the parameter (`undefined`: not sent). */
  variants: (string | number | boolean | undefined)[];
}

function pinValue(pin: ConditionKeyPin, raw: unknown): string | undefined {
  if (pin.type === 'Bool') return typeof raw === 'boolean' ? String(raw) : undefined;
  if (pin.type === 'Numeric') return typeof raw === 'number' && Number.isFinite(raw) ? String(raw) : undefined;
  // String keys whose member is a boolean (ssm:Overwrite) hold its text, as in the request.
  return typeof raw === 'string' ? raw : typeof raw === 'boolean' ? String(raw) : undefined;
}

/** The equality operator for a key's type (IAM User Guide, "IAM JSON policy elements: Condition operators"). */
function equalsOperator(pin: ConditionKeyPin): 'StringEquals' | 'NumericEquals' | 'Bool' {
  return pin.type === 'String' ? 'StringEquals' : pin.type === 'Numeric' ? 'NumericEquals' : 'Bool';
}

function typed(pin: ConditionKeyPin, value: string): string | number | boolean {
  return pin.type === 'Bool' ? value === 'true' : pin.type === 'Numeric' ? Number(value) : value;
}

/**
 * The parameters of the decided call this action's statement pins. A value the table cannot read (a custom
 * command without a `cliArg` for it, or a value of the wrong type) pins nothing: the statement is then exactly as
 * wide as it was without this mapping, and enforceable.ts treats the parameter as free.
 */
export function paramPins(action: string, inv: PinnableInvocation | null | undefined): ParamPin[] {
  if (!inv) return [];
  const out: ParamPin[] = [];
  for (const pin of conditionKeyPins(action)) {
    let raw: unknown;
    if (inv.kind === 'api') raw = inv.params[pin.param];
    else if (inv.kind === 'custom' && pin.cliArg !== undefined) raw = inv.cliArgs?.[pin.cliArg];
    else continue;
    if (raw === undefined || raw === null) {
      if (pin.pinAbsent === false) continue;
      // Not sent. With a documented default, `<type>IfExists default` lets the request omit it or send the
      // default; otherwise `Null: true` lets it omit the key only ("Null condition operator", IAM User Guide).
      if (pin.absent !== undefined) {
        out.push({ pin, operator: `${equalsOperator(pin)}IfExists`, value: pin.absent, variants: [undefined, typed(pin, pin.absent)] });
      } else {
        out.push({ pin, operator: 'Null', value: 'true', variants: [undefined] });
      }
      continue;
    }
    const value = pinValue(pin, raw);
    if (value === undefined) continue;
    const equals = equalsOperator(pin);
    if (pin.ifExists) out.push({ pin, operator: `${equals}IfExists`, value, variants: [undefined, typed(pin, value)] });
    else out.push({ pin, operator: equals, value, variants: [typed(pin, value)] });
  }
  return out;
}
