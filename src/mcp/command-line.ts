import { GuardError } from '../errors.js';

/**
 * Splits one `aws …` command line into words the way a POSIX shell would quote them (POSIX.1-2017 XCU §2.2:
 * backslash, single and double quotes), without being a shell: nothing is expanded, substituted or redirected.
 * A model that writes `aws s3 ls | head` or `$(…)` means something this cannot do, so any unquoted operator or
 * expansion character is refused with its position rather than silently passed to aws as a word. Glob characters
 * (`*`, `?`, `[`) are kept literally, as a shell does when nothing matches: `--query Buckets[].Name` is common.
 */
const OPERATORS = new Set(['|', '&', ';', '<', '>', '(', ')', '`', '$', '#', '~']);

export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const fail = (what: string): never => {
    throw new GuardError('usage', `command: ${what} at character ${i + 1}; this is not a shell (pass argv as an array instead)`, {
      details: { position: i + 1 },
    });
  };
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
      continue;
    }
    if (c === '\n' || c === '\r') fail('a line break');
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) fail('an unterminated single quote');
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
      continue;
    }
    if (c === '"') {
      // Inside double quotes a backslash escapes only $ ` " \ (and a line break); `$` and backquotes would expand.
      let j = i + 1;
      for (;;) {
        if (j >= line.length) fail('an unterminated double quote');
        const d = line[j]!;
        if (d === '"') break;
        if (d === '\\' && j + 1 < line.length && '$`"\\'.includes(line[j + 1]!)) {
          word += line[j + 1];
          j += 2;
          continue;
        }
        if (d === '$' || d === '`') {
          i = j;
          fail(`"${d}" (expansion) inside double quotes`);
        }
        word += d;
        j++;
      }
      inWord = true;
      i = j + 1;
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= line.length) fail('a trailing backslash');
      word += line[i + 1];
      inWord = true;
      i += 2;
      continue;
    }
    // `#` and `~` are special only at the start of a word; elsewhere they are ordinary characters.
    if (OPERATORS.has(c) && !((c === '#' || c === '~') && inWord)) fail(`an unquoted "${c}"`);
    word += c;
    inWord = true;
    i++;
  }
  if (inWord) words.push(word);
  return words;
}
