import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { brokerOption, jsonOption, noInputOption } from '../options.js';
import { whoami, type WhoamiInfo } from '../../auth/whoami.js';
import { openTokenStore } from '../../auth/token-store.js';
import { resolveBrokerUrl } from '../../config/client-config.js';

/** Where the token comes from, as a sentence fragment (`token:    from guard-aws login, kept in …`). */
function tokenText(info: WhoamiInfo, env: NodeJS.ProcessEnv): string {
  switch (info.source) {
    case 'login':
      return `from \`guard-aws login\`, kept in ${info.keptIn}`;
    case 'GUARD_AWS_TOKEN':
      return 'given in the environment variable GUARD_AWS_TOKEN (guard-aws stores nothing)';
    case 'GUARD_AWS_TOKEN_FILE':
      return `read from ${env.GUARD_AWS_TOKEN_FILE} (GUARD_AWS_TOKEN_FILE) on every call`;
    default:
      return 'GitHub Actions OIDC token, fetched for each call (not stored)';
  }
}

export function command(ctx: CliContext): Command {
  return new Command('whoami')
    .description('show who guard-aws acts as: subject, groups, expiry, broker and where the token is kept')
    .addOption(brokerOption())
    .addOption(noInputOption())
    .addOption(jsonOption())
    .action(async (o: { broker?: string; json?: boolean }) => {
      const brokerUrl = await resolveBrokerUrl(o.broker, ctx.env);
      const store = await openTokenStore({ env: ctx.env });
      const info = await whoami({ env: ctx.env, store, ...(brokerUrl ? { brokerUrl } : {}) });
      if (o.json) {
        ctx.host.result(JSON.stringify(info, null, 2));
        return;
      }
      ctx.host.result(
        [
          `subject:  ${info.subject ?? '(unknown)'}`,
          `groups:   ${info.groups.length ? info.groups.join(', ') : '(none)'}`,
          `expires:  ${info.expiresAt ?? '(unknown)'}`,
          `broker:   ${info.broker ?? '(not set)'}`,
          `token:    ${tokenText(info, ctx.env)}`,
        ].join('\n'),
      );
    });
}
