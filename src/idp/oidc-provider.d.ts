// oidc-provider ships no type declarations (DefinitelyTyped's lag behind v9); this declares only the small
// surface guard-aws uses, so the rest of src/idp stays strictly typed.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface KoaContext {
    req: IncomingMessage;
    res: ServerResponse;
    path: string;
    method: string;
    status: number;
    body: unknown;
    type: string;
    oidc?: {
      route?: string;
      params?: Record<string, unknown>;
      client?: { clientId: string };
      [k: string]: unknown;
    };
    redirect(url: string): void;
    set(field: string, value: string): void;
  }
  export type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

  export interface InteractionDetails {
    uid: string;
    prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    params: Record<string, unknown>;
    session?: { accountId?: string };
    grantId?: string;
  }

  export interface GrantInstance {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    issuer: string;
    proxy: boolean;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    use(fn: Middleware): this;
    on(event: string, listener: (...args: any[]) => void): this;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionResult(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options?: { mergeWithLastSubmission?: boolean }): Promise<string>;
    Grant: {
      new (init: { accountId: string; clientId: string }): GrantInstance;
      find(id: string): Promise<GrantInstance | undefined>;
    };
  }
  export const errors: Record<string, new (description?: string, detail?: string) => Error>;
  export default Provider;
}
