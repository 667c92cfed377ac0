import { Command, Option } from 'commander';
import type { ApprovalSummary } from '../../api/types.js';
import {
  approveApproval,
  denyApproval,
  getApproval,
  listApprovalPage,
  withdrawApproval,
  type ApprovalClientOptions,
  type ListScope,
} from '../../approvals/client.js';
import { renderApproval, renderApprovalList } from '../../approvals/render.js';
import { MAX_TEXT } from '../../approvals/service.js';
import { brokerSession } from '../../auth/broker-session.js';
import { GuardError, oneLine } from '../../errors.js';
import { visible } from '../../terminal-text.js';
import type { CliContext } from '../context.js';
import { brokerOption, intParser, jsonOption } from '../options.js';

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'used', 'withdrawn'] as const;

interface Common {
  broker?: string;
  json?: boolean;
}

/** `guard-aws approvals list|show|approve|deny|withdraw` — the approver's (and requester's) side of approvals. */
export function command(ctx: CliContext): Command {
  const session = (o: Common): Promise<ApprovalClientOptions> => brokerSession({ env: ctx.env, flag: o.broker });
  const print = (o: Common, a: ApprovalSummary) => ctx.host.result(o.json ? JSON.stringify(a, null, 2) : renderApproval(a, Date.now()));
  const broker = brokerOption;
  const json = jsonOption;
  const comment = () =>
    new Option('--comment <text>', `a comment recorded with the decision (at most ${MAX_TEXT} characters)`).argParser((v: string) => {
      if (v.length > MAX_TEXT) throw new GuardError('usage', `--comment is ${v.length} characters long; at most ${MAX_TEXT} are allowed`);
      return v;
    });

  const cmd = new Command('approvals').description('list, show, approve, deny and withdraw approval requests');

  cmd
    .command('list')
    .description('requests you can see: your own, those you may decide, all of them for auditors')
    .addOption(new Option('--status <status>', 'only requests in this state').choices(STATUSES))
    .addOption(new Option('--decide', 'only requests waiting for your decision').conflicts('mine'))
    .option('--mine', 'only your own requests')
    .option('--limit <n>', 'at most this many, newest first (1–1000)', intParser('--limit', 1, 1000))
    .option('--cursor <next>', 'continue after the previous page (its `next`)')
    .addOption(broker())
    .addOption(json())
    .action(async (o: Common & { status?: ApprovalSummary['status']; decide?: boolean; mine?: boolean; limit?: number; cursor?: string }) => {
      const scope: ListScope = o.decide ? 'decide' : o.mine ? 'mine' : 'visible';
      if (o.cursor !== undefined && !/^[A-Za-z0-9_-]{1,200}$/.test(o.cursor)) {
        throw new GuardError('usage', '--cursor: not a cursor; pass the `next` of the previous page unchanged');
      }
      const page = await listApprovalPage(await session(o), {
        scope,
        ...(o.status ? { status: o.status } : {}),
        ...(o.limit ? { limit: o.limit } : {}),
        ...(o.cursor ? { cursor: o.cursor } : {}),
      });
      // --json: the page as the broker answers it, {approvals, next?}; `next` is the --cursor of the following page.
      ctx.host.result(o.json ? JSON.stringify(page, null, 2) : renderApprovalList(page.approvals, Date.now()));
      if (!o.json && page.next) ctx.host.info(`more: guard-aws approvals list --cursor ${page.next}`);
    });

  cmd
    .command('show')
    .description('the whole request: parsed call, risks, rule, requester, reason, approvals so far, expiry')
    .argument('<id>', 'request id (apr_…)')
    .addOption(broker())
    .addOption(json())
    .action(async (id: string, o: Common) => {
      print(o, await getApproval(await session(o), id));
    });

  const decision = (verb: 'approve' | 'deny') =>
    cmd
      .command(verb)
      .description(verb === 'approve' ? 'approve a request (never your own); the call may then run once' : 'deny a request; a denial is final')
      .argument('<id>', 'request id (apr_…)')
      .addOption(comment())
      .option('-y, --yes', 'do not show the request and ask for confirmation first (on a terminal)')
      .addOption(broker())
      .addOption(json())
      .action(async (id: string, o: Common & { comment?: string; yes?: boolean }) => {
        const s = await session(o);
        if (ctx.host.interactive && !o.yes && ctx.host.prompt) {
          // An approver decides on what they see: show the exact call before asking.
          const current = await getApproval(s, id);
          ctx.host.info(renderApproval(current, Date.now()));
          const answer = (await ctx.host.prompt(`${verb === 'approve' ? 'Approve' : 'Deny'} ${id}? [y/N] `)).trim().toLowerCase();
          if (answer !== 'y' && answer !== 'yes') {
            ctx.host.info('Nothing was decided.');
            return;
          }
        }
        const done = verb === 'approve' ? await approveApproval(s, id, o.comment) : await denyApproval(s, id, o.comment);
        if (o.json) return print(o, done);
        const state =
          done.status === 'approved'
            ? `approved; ${visible(done.requester)} may now run it once (until ${done.expiresAt})`
            : done.status === 'pending'
              ? `approval recorded: ${done.approvals.length} of ${done.required}`
              : done.status;
        ctx.host.result(`${done.id}: ${state}`);
      });
  decision('approve');
  decision('deny');

  cmd
    .command('withdraw')
    .description('withdraw your own pending or approved request')
    .argument('<id>', 'request id (apr_…)')
    .addOption(broker())
    .addOption(json())
    .action(async (id: string, o: Common) => {
      const done = await withdrawApproval(await session(o), id);
      if (o.json) return print(o, done);
      ctx.host.result(`${done.id}: withdrawn`);
    });

  // main.ts sets exitOverride/output on this command only after it is built, and commander copies those settings
  // to subcommands only when they are created: set them here, or a usage error in a subcommand would exit the
  // process from inside commander instead of returning the documented exit code.
  for (const sub of cmd.commands) {
    sub.exitOverride();
    sub.configureOutput({
      writeOut: (t) => ctx.host.result(t.replace(/\n$/, '')),
      writeErr: (t) => ctx.host.error(oneLine(t.replace(/^error: /, ''))),
    });
  }
  return cmd;
}
