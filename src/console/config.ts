import { z } from 'zod';

/**
 * The `console:` section of the broker config. Without it the broker serves no console. `publicUrl` is the
 * origin people's browsers use to reach the broker (behind a proxy it differs from `listen`); the console
 * lives at `<publicUrl>/ui/` and registers `<publicUrl>/ui/callback` as its redirect URI at the identity provider.
 */
export const consoleConfigSchema = z.strictObject({
  publicUrl: z
    .url({ protocol: /^https?$/ })
    .refine((u) => new URL(u).origin === u.replace(/\/+$/, ''), 'must be an origin such as https://guard.example.com (no path)'),
  /** The identity provider's client for the console: public, authorization code + PKCE. */
  clientId: z.string().min(1).default('guard-aws-console'),
  /** How long a console sign-in lasts (then the browser goes through the identity provider again). */
  sessionTtlSec: z.int().min(60).max(86_400).default(3600),
});

export type ConsoleConfigInput = z.input<typeof consoleConfigSchema>;
export type ConsoleConfig = z.output<typeof consoleConfigSchema>;

/** The console's redirect URI for a public URL (register it at the identity provider). */
export function consoleRedirectUri(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/ui/callback`;
}
