import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { brokerOption, jsonOption, noInputOption } from '../options.js';
import { logout } from '../../auth/logout.js';
import { openTokenStore } from '../../auth/token-store.js';
import { noBrokerError, resolveBrokerUrl } from '../../config/client-config.js';

export function command(ctx: CliContext): Command {
  return new Command('logout')
    .description('forget the stored login (and revoke it at the identity provider where supported)')
    .addOption(brokerOption())
    .addOption(noInputOption())
    .addOption(jsonOption('print {broker, forgotten, subject, revoked} as JSON'))
    .action(async (o: { broker?: string; json?: boolean }) => {
      const brokerUrl = await resolveBrokerUrl(o.broker, ctx.env);
      if (!brokerUrl) throw noBrokerError();
      const store = await openTokenStore({ env: ctx.env });
      const r = await logout({ brokerUrl, store, env: ctx.env, host: ctx.host });
      if (o.json) {
        ctx.host.result(JSON.stringify({ broker: brokerUrl, forgotten: r.forgotten, subject: r.subject ?? null, revoked: r.revoked }, null, 2));
        return;
      }
      if (!r.forgotten) ctx.host.info(`not logged in to ${brokerUrl}; nothing to forget`);
      else ctx.host.info(`Logged out ${r.subject ?? ''} from ${brokerUrl}${r.revoked ? ' (revoked at the identity provider)' : ''}`.replace('  ', ' '));
    });
}
