/**
 * What the guard says when a command, operation or sub-command is not one the target AWS CLI has
 * (docs/aws-cli-parsing.md §2.7): a typo gets the names it was probably meant to be, and a command that only
 * AWS CLI v2 has is named as such on v1. Either way the invocation is refused (GuardError 'parse', exit 64)
 * before anything runs; the guard never runs its own guess.
 */
import type { GuardError } from '../errors.js';
import { type Token, at } from './grammar.js';
import { parseError } from './values.js';

/**
 * Commands and sub-commands that AWS CLI v2 adds as customizations and v1 does not have (read from the v2
 * branch of aws/aws-cli, awscli/customizations/; each checked absent from the v1 model in data/aws-model).
 * The v2-only `configure` sub-commands are listed with their risks in customizations.ts.
 */
const V2_ONLY_COMMANDS = new Set(['ddb', 'login', 'logout', 'cli-dev']);
const V2_ONLY_SUBCOMMANDS: Record<string, readonly string[]> = {
  logs: ['tail'],
  sso: ['login'],
  'ec2-instance-connect': ['ssh', 'open-tunnel'],
  lightsail: ['push-container-image'],
  dsql: ['generate-db-connect-auth-token', 'generate-db-connect-admin-auth-token'],
};

/** True when `command` (with `subcommand`, when given) exists only in AWS CLI v2. */
export function isV2Only(command: string, subcommand?: string): boolean {
  if (subcommand === undefined) return V2_ONLY_COMMANDS.has(command);
  return Object.prototype.hasOwnProperty.call(V2_ONLY_SUBCOMMANDS, command) && V2_ONLY_SUBCOMMANDS[command]!.includes(subcommand);
}

/**
 * A v2-only command met on the CLI version the guard runs. On v1 it does not exist (the real CLI would say
 * "Invalid choice"); on v2 it exists but guard-aws has no model of what it calls, so it is refused.
 */
export function v2OnlyError(name: string, token: Token, version: 'v1' | 'v2'): GuardError {
  if (version === 'v1') {
    return parseError(`${name} exists only in AWS CLI v2, and guard-aws runs AWS CLI v1 (${at(token)})`, {
      index: token.index,
      token: token.text,
      reason: 'v2_only',
    });
  }
  return parseError(`${name}: this AWS CLI v2 customization is not supported by guard-aws (refused rather than guessed), at ${at(token)}`, {
    index: token.index,
    token: token.text,
    reason: 'unsupported_customization',
  });
}

/**
 * `message` for a token that is none of `choices`, with the likeliest intended choices appended, as the AWS
 * CLI appends "maybe you meant:". Details carry the suggestions for `--json` callers.
 */
export function unknownChoiceError(message: string, token: Token, choices: Iterable<string>): GuardError {
  const suggestions = closeMatches(token.text, choices);
  const hint = suggestions.length ? `; maybe you meant: ${suggestions.join(', ')}` : '';
  return parseError(`${message}${hint}`, { index: token.index, token: token.text, ...(suggestions.length ? { suggestions } : {}) });
}

/**
 * Up to `limit` choices close to `word`, best first. The AWS CLI suggests what Python's
 * `difflib.get_close_matches(word, choices, cutoff=0.8)` returns (awscli/argparser.py, `_check_value`); that
 * misses one-letter slips in short names (`ec3` scores 0.67 against `ec2`), so a choice one edit away
 * (a letter inserted, dropped, replaced, or two neighbours swapped) is suggested as well.
 */
export function closeMatches(word: string, choices: Iterable<string>, limit = 3): string[] {
  const scored: { choice: string; score: number }[] = [];
  for (const choice of new Set(choices)) {
    if (choice === word) continue;
    // difflib's real_quick_ratio bound: no ratio can beat the shorter length's share (keeps long tokens cheap).
    const bound = (2 * Math.min(choice.length, word.length)) / (choice.length + word.length);
    if (bound < 0.8 && Math.abs(choice.length - word.length) > 1) continue;
    const score = similarity(choice, word);
    if (score >= 0.8 || oneEditApart(choice, word)) scored.push({ choice, score });
  }
  scored.sort((a, b) => b.score - a.score || (a.choice < b.choice ? -1 : a.choice > b.choice ? 1 : 0));
  return scored.slice(0, limit).map(({ choice }) => choice);
}

/**
 * difflib.SequenceMatcher(None, a, b).ratio() for short strings: 2·M / (|a| + |b|), where M counts the
 * characters of the matching blocks found by taking the longest common substring and recursing on both sides
 * of it (Ratcliff/Obershelp). difflib's junk heuristics only apply to sequences of 200 or more items.
 */
export function similarity(a: string, b: string): number {
  if (!a.length && !b.length) return 1;
  return (2 * matchingCharacters(a, 0, a.length, b, 0, b.length)) / (a.length + b.length);
}

function matchingCharacters(a: string, aStart: number, aEnd: number, b: string, bStart: number, bEnd: number): number {
  // Longest common substring of a[aStart, aEnd) and b[bStart, bEnd): earliest in a, then earliest in b, as
  // SequenceMatcher.find_longest_match breaks ties.
  let bestA = aStart;
  let bestB = bStart;
  let bestLength = 0;
  let previous = new Map<number, number>();
  for (let i = aStart; i < aEnd; i++) {
    const current = new Map<number, number>();
    for (let j = bStart; j < bEnd; j++) {
      if (a[i] !== b[j]) continue;
      const length = (previous.get(j - 1) ?? 0) + 1;
      current.set(j, length);
      if (length > bestLength) {
        bestA = i - length + 1;
        bestB = j - length + 1;
        bestLength = length;
      }
    }
    previous = current;
  }
  if (bestLength === 0) return 0;
  return (
    bestLength +
    matchingCharacters(a, aStart, bestA, b, bStart, bestB) +
    matchingCharacters(a, bestA + bestLength, aEnd, b, bestB + bestLength, bEnd)
  );
}

/** True when one insertion, deletion, substitution or swap of adjacent characters turns `a` into `b`. */
export function oneEditApart(a: string, b: string): boolean {
  if (a === b || Math.abs(a.length - b.length) > 1) return false;
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const differingA = endA - start;
  const differingB = endB - start;
  if (differingA <= 1 && differingB <= 1) return true; // one inserted, dropped or replaced character
  // two neighbours swapped: "lsit" / "list"
  return differingA === 2 && differingB === 2 && a[start] === b[start + 1] && a[start + 1] === b[start];
}
