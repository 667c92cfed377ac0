import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorResponse } from './types.js';

/**
 * An answer other than 2xx that a handler or middleware chose deliberately. Its message is shown to the client,
 * so it must never carry internals or secrets; anything else thrown becomes a generic 500.
 */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly extra: Omit<ErrorResponse['error'], 'code' | 'message'> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): ErrorResponse {
    return { error: { code: this.code, message: this.message, ...this.extra } };
  }
}
