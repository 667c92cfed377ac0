import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { brokerOption, jsonOption, noInputOption } from '../options.js';
import { whoami } from '../../auth/whoami.js';
import { openTokenStore } from '../../auth/token-store.js';
import { resolveBrokerUrl } from '../../config/client-config.js';

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
          `token:    ${info.source === 'login' ? 'guard-aws login' : info.source}, kept in ${info.keptIn}`,
        ].join('\n'),
      );
    });
}
