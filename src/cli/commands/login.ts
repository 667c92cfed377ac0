import { Command } from 'commander';
import type { CliContext } from '../context.js';
import { brokerOption, noInputOption } from '../options.js';
import { login, openInBrowser } from '../../auth/login.js';
import { openTokenStore } from '../../auth/token-store.js';
import { noBrokerError, resolveBrokerUrl } from '../../config/client-config.js';

export function command(ctx: CliContext): Command {
  return new Command('login')
    .description('log in with the OAuth 2.0 device flow (RFC 8628) at the identity provider your broker names')
    .addOption(brokerOption())
    .addOption(noInputOption())
    .option('--no-browser', 'never offer to open a browser')
    .action(async (o: { broker?: string; browser: boolean }) => {
      const brokerUrl = await resolveBrokerUrl(o.broker, ctx.env);
      if (!brokerUrl) throw noBrokerError();
      const store = await openTokenStore({ env: ctx.env });
      const stored = await login({ brokerUrl, host: ctx.host, env: ctx.env, store, noBrowser: !o.browser, openBrowser: openInBrowser });
      const groups = stored.groups.length ? stored.groups.join(', ') : 'none';
      ctx.host.info(`Logged in to ${brokerUrl} as ${stored.subject} (groups: ${groups}); token kept in ${store.describe()}`);
    });
}
