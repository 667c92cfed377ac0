import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import type { BrokerEnv } from '../env.js';
import { ApiError } from '../../api/http-error.js';

/** `argv[2]`, `files.x`, `(body)` — the field a validation issue is about, as a client would write it. */
export function fieldName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(body)';
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
}

/** The request's JSON body, or 400 when it is not declared as JSON or does not parse. */
export async function readJsonBody(c: Context<BrokerEnv>): Promise<unknown> {
  const type = c.req.header('Content-Type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new ApiError('bad_request', 'the body must be JSON (Content-Type: application/json)');
  }
  try {
    return await c.req.json();
  } catch {
    throw new ApiError('bad_request', 'the body is not valid JSON');
  }
}

/**
 * Validates the JSON body against a zod schema before the handler runs; the handler reads the parsed value from
 * `c.get('body')`. Anything else → 400 naming the first offending field.
 */
export function validateJson(schema: z.ZodType): MiddlewareHandler<BrokerEnv> {
  return async (c, next) => {
    const raw = await readJsonBody(c);
    const r = schema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const field = issue.code === 'unrecognized_keys' ? fieldName([...issue.path, issue.keys[0]!]) : fieldName(issue.path);
      throw new ApiError('bad_request', `invalid field ${field}: ${issue.message}`, { field } as never);
    }
    c.set('body', r.data);
    return next();
  };
}
