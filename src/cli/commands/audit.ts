import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { parsePublicKeys } from '../../audit/broker-key.js';
import { AuditClient } from '../../audit/client.js';
import { brokerSession, type BrokerSession } from '../../auth/broker-session.js';
import { verifyExportFile } from '../../audit/export.js';
import { bodyFrames, replayFrames, replayTranscript } from '../../audit/replay.js';
import { ARCHIVE_LOG, fetchArchiveBodies, verifyArchiveBodies } from '../../audit/bodies/archive.js';
import type { BodiesResult } from '../../audit/bodies/verify.js';
import { parseSince } from '../../audit/since.js';
import type { ApprovedFacts } from '../../audit/ingest.js';
import type { AuditSummary, UnreportedGrant } from '../../audit/summary.js';
import type { ChainResult } from '../../audit/types.js';
import { ERRORS, GuardError, isGuardError } from '../../errors.js';
import type { ApprovalSummary } from '../../api/types.js';
import { EXIT } from '../../exit-codes.js';
import { flushSpool } from '../../transcript/spool.js';
import { defaultSpoolDir } from '../../transcript/spool-dir.js';
import type { TranscriptEnvelope } from '../../transcript/types.js';
import { createTranscriptUploader } from '../../transcript/upload.js';
import { shellWords, visible } from '../../terminal-text.js';
import type { CliContext } from '../context.js';
import { brokerOption, intParser, jsonOption, numberParser } from '../options.js';

/** Exit code of `audit verify` when the chain is broken: the data is bad (EX_DATAERR, 65). */
export const EXIT_CHAIN_BROKEN = ERRORS.audit_broken.exit;

/** The logged argv, shell-quoted, control characters visible (a record cannot redraw itself as another). */
function argvText(argv: string[] | undefined): string {
  if (!argv) return '';
  const s = shellWords(argv);
  return s.length > 100 ? `${s.slice(0, 99)}…` : s;
}

/** A caller-controlled field of a record (subject, target, rule…), one line, controls visible. */
const field = (s: string | null | undefined, none = '-') => (s === null || s === undefined ? none : visible(String(s)));

/** A table with a header row, like `approvals list`; the last column is not padded. */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

/**
 * `audit list`: the first column is what `audit show` and `audit replay` take — the grant id (one transcript per
 * grant), or the record id for a record without a grant.
 */
function summaryTable(rows: AuditSummary[]): string {
  return table(
    ['ID', 'TIME', 'CALLER', 'OUTCOME', 'TARGET', 'COMMAND'],
    rows.map((s) => [
      field(s.grantId ?? s.id),
      field(s.at),
      field(s.subject),
      s.kind === 'transcript' ? `${field(s.status)}${s.exitCode === null || s.exitCode === undefined ? '' : ` exit ${field(String(s.exitCode))}`}` : field(s.kind),
      field(s.target),
      `aws ${argvText(s.argv)}`,
    ]),
  );
}

function unreportedTable(rows: UnreportedGrant[]): string {
  return table(
    ['GRANT', 'GRANTED', 'CALLER', 'TARGET', 'COMMAND'],
    rows.map((u) => [field(u.grantId), field(u.createdAt), field(u.subject), field(u.target), `aws ${argvText(u.argv)}`]),
  );
}

/** Who decided an approval and what they said, for `audit show` (the approval itself lives in /v1/approvals). */
async function approvalLines(link: BrokerSession, id: string): Promise<string[]> {
  const { getApproval } = await import('../../approvals/client.js');
  let a: ApprovalSummary;
  try {
    a = await getApproval({ brokerUrl: link.brokerUrl, token: link.token, ...(link.fetch ? { fetch: link.fetch } : {}) }, id);
  } catch (e) {
    return [`approval:  ${visible(id)} (details unavailable: ${isGuardError(e) ? e.code : 'error'})`];
  }
  const lines = [`approval:  ${visible(a.id)}, requested by ${visible(a.requester)}${a.reason ? `: ${visible(a.reason)}` : ''}`];
  for (const d of a.approvals) lines.push(`           approved by ${visible(d.by)} at ${d.at}${d.comment ? `: ${visible(d.comment)}` : ''}`);
  if (a.approvals.length === 0) lines.push('           approved by nobody on record');
  return lines;
}

function badBodyText(b: BodiesResult): string {
  const x = b.firstBad!;
  return `transcript body ${x.reason === 'missing' ? 'missing' : 'altered'} at record seq ${x.seq} (id ${x.id}${x.grantId ? `, grant ${x.grantId}` : ''}): ${x.location}${
    x.found ? ` now holds ${x.found.size} bytes with SHA-256 ${x.found.sha256}, the record binds ${x.sha256}` : ''
  }; ${b.checked} body(ies) before it verified`;
}

function breakText(r: ChainResult): string {
  const b = r.firstBroken!;
  return `audit chain broken at record seq ${b.seq}${b.id ? ` (id ${b.id})` : ''}: ${b.reason}; ${r.count} record(s) before it verified`;
}

export function command(ctx: CliContext): Command {
  const cmd = new Command('audit').description('list, show, replay, verify and export the audit log (auditors), flush the local spool');
  const broker = brokerOption;
  const client = async (o: { broker?: string }) => new AuditClient(await brokerSession({ flag: o.broker, env: ctx.env }));
  const now = () => Date.now();

  cmd
    .command('list')
    .description('list transcripts (newest first), or grants whose transcript never arrived')
    .option('--user <subject>', 'only this caller')
    .option('--since <time>', 'ISO-8601 time or a duration back from now (24h, 7d)')
    .option('--unreported', 'grants whose transcript never arrived')
    .option('--limit <n>', 'at most this many (default 100)', intParser('--limit', 1, 10_000))
    .addOption(jsonOption())
    .addOption(broker())
    .action(async (o: { user?: string; since?: string; unreported?: boolean; limit?: number; json?: boolean; broker?: string }) => {
      const q = { user: o.user, since: o.since ? parseSince(o.since, now()) : undefined, limit: o.limit };
      const c = await client(o);
      if (o.unreported) {
        const rows = await c.unreported(q);
        ctx.host.result(o.json ? JSON.stringify(rows, null, 2) : rows.length ? unreportedTable(rows) : 'no unreported grants');
        return;
      }
      const rows = await c.list(q);
      ctx.host.result(o.json ? JSON.stringify(rows, null, 2) : rows.length ? summaryTable(rows) : 'no records');
    });

  cmd
    .command('show')
    .description('show one record (by record id or grant id): the call, who, when, outcome, output size')
    .argument('<id>', 'record id or grant id')
    .addOption(jsonOption('print the full record (body included) as JSON'))
    .addOption(broker())
    .action(async (id: string, o: { json?: boolean; broker?: string }) => {
      const link = await brokerSession({ flag: o.broker, env: ctx.env });
      const { record, summary } = await new AuditClient(link).show(id);
      if (o.json) {
        ctx.host.result(JSON.stringify({ ...record, body: JSON.parse(record.body) }, null, 2));
        return;
      }
      const body = JSON.parse(record.body) as { envelope?: TranscriptEnvelope; approval?: ApprovedFacts; attestation?: string };
      const t = body.envelope?.transcript;
      // Every field but seq comes from what the caller sent (the transcript is theirs): shown with controls visible.
      const lines = [
        `record:    ${field(record.id)} (seq ${record.seq}, ${field(record.kind)}, appended ${field(record.at)})`,
        `grant:     ${field(record.grantId)}`,
        `caller:    ${field(record.subject)}`,
        `target:    ${field(summary.target)}`,
        `call:      aws ${summary.argv ? shellWords(summary.argv) : ''}`,
        `decision:  ${field(summary.decision)}${summary.rule ? ` (rule ${field(summary.rule)})` : ''}${t?.approvalId ? `, approval ${field(t.approvalId)}` : ''}`,
      ];
      if (t) {
        lines.push(
          `ran:       ${field(t.startedAt)} → ${field(t.endedAt, '(did not finish)')}`,
          `outcome:   ${field(t.status)}${t.exitCode === null ? '' : `, exit ${field(String(t.exitCode))}`}${t.truncated ? ', output truncated' : ''}`,
          // Who vouches for the output: the broker ran the call itself, or the caller's client signed what it ran.
          `attested:  ${body.attestation === 'broker' ? 'broker-attested (the broker ran the call and recorded its output)' : "caller-signed (the caller's guard-aws ran the call)"}`,
          t.body
            ? `output:    ${field(String(t.outputBytes))} bytes${t.body.gapBytes ? ` (${field(String(t.body.gapBytes))} left out between head and tail: transcript limit)` : ''}, body sha256:${field(t.body.sha256)} (${field(String(t.body.size))} bytes) at ${field((body as { body?: { location?: string } }).body?.location)}; \`guard-aws audit replay ${field(record.grantId)}\` plays it back`
            : `output:    ${field(String(t.outputBytes))} bytes in ${t.chunks.length} chunk(s); \`guard-aws audit replay ${field(record.grantId)}\` plays it back`,
        );
        if (t.approvalId) lines.push(...(await approvalLines(link, t.approvalId)));
      }
      if (body.approval?.parameters) {
        // Kept in the record itself (signed and chained): the parameters exactly as the approvers saw them.
        const { parameterLines } = await import('../../approvals/render.js');
        lines.push(`approved:  binding sha256:${field(body.approval.bindingHash)}`, ...parameterLines(body.approval.parameters).map((l) => `           ${l}`));
      }
      ctx.host.result(lines.join('\n'));
    });

  cmd
    .command('replay')
    .description('play a transcript\'s masked output back with its original timing (colours kept; other terminal controls shown, not obeyed)')
    .argument('<id>', 'record id or grant id')
    .option('--speed <n>', 'N times faster (0 or "max": no waiting)', numberParser('--speed', { max: 0 }), 1)
    .addOption(broker())
    .action(async (id: string, o: { speed: number; broker?: string }) => {
      const c = await client(o);
      const { record } = await c.show(id);
      const env = (JSON.parse(record.body) as { envelope?: TranscriptEnvelope }).envelope;
      if (!env) throw new GuardError('usage', `record ${id} is a ${record.kind} record, it has no output to replay`);
      const opts = {
        speed: o.speed,
        write: (s: 'stdout' | 'stderr', data: Buffer) =>
          new Promise<void>((resolve) => {
            const stream = s === 'stdout' ? process.stdout : process.stderr;
            if (stream.write(data)) resolve();
            else stream.once('drain', () => resolve());
          }),
      };
      const ref = env.transcript.body;
      if (!ref) {
        await replayTranscript(env.transcript, opts);
        return;
      }
      // Streamed from storage and decoded as it comes (bounded memory), hashed on the way: a body that is not the
      // one the record binds is said at the end, with exit 65.
      const h = createHash('sha256');
      let n = 0;
      const source = await c.body(ref.sha256);
      const hashed = (async function* () {
        for await (const piece of source) {
          h.update(piece);
          n += piece.byteLength;
          yield piece;
        }
      })();
      await replayFrames(bodyFrames(hashed), opts);
      if (h.digest('hex') !== ref.sha256 || n !== ref.size) {
        throw new GuardError('audit_broken', `audit replay: the stored body of ${visible(id)} is not the one its record binds (run \`guard-aws audit verify --bodies\`)`);
      }
    });

  cmd
    .command('verify')
    .description('walk the whole chain and check every link and signature (at the broker, or offline with --file/--key)')
    .option('--file <file.jsonl>', 'verify an `audit export` file instead of asking the broker')
    .option('--key <file>', 'the broker\'s public key for --file: PEM, JWK, or `GET /v1/keys` output')
    .option('--bodies', 're-hash every transcript body from storage (or, with --file, from the archive\'s bodies/ directory) and name the first that differs or is missing')
    .addOption(jsonOption())
    .addOption(broker())
    .action(async (o: { file?: string; key?: string; json?: boolean; broker?: string; bodies?: boolean }) => {
      let result: ChainResult & { bodies?: BodiesResult };
      if (o.file || o.key) {
        if (!o.file || !o.key) throw new GuardError('usage', 'audit verify: --file and --key go together');
        let keyText: string;
        try {
          keyText = readFileSync(o.key, 'utf8');
        } catch (e) {
          throw new GuardError('usage', `audit verify: cannot read --key ${o.key} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
        }
        result = await verifyExportFile(o.file, parsePublicKeys(keyText));
        // Bodies are checked against records only once the records themselves verified.
        if (o.bodies && result.ok) {
          const b = await verifyArchiveBodies(o.file);
          result = { ...result, ok: b.ok, bodies: b };
        }
      } else {
        result = await (await client(o)).verify({ bodies: !!o.bodies });
      }
      if (o.json) ctx.host.result(JSON.stringify(result, null, 2));
      if (!result.ok) {
        // An export file is whoever wrote it: its ids and the reason quoting them are shown with controls visible.
        if (!o.json) ctx.host.error(visible(result.firstBroken ? breakText(result) : badBodyText(result.bodies!)));
        ctx.exitCode = EXIT_CHAIN_BROKEN;
        return;
      }
      if (!o.json) {
        ctx.host.result(
          `audit chain ok: ${result.count} record(s) verified${result.fromGenesis ? ' from the first record' : ' (partial export: from its first record)'}, head ${result.headHash ?? '(empty log)'}${
            result.bodies ? `; ${result.bodies.checked} transcript body(ies) re-hashed (${result.bodies.bytes} bytes), all intact` : ''
          }`,
        );
      }
    });

  cmd
    .command('export')
    .description('write the audit log as JSONL to stdout (verify it later with `audit verify --file --key`); with --bodies DIR, an archive with every transcript body')
    .option('--since <time>', 'ISO-8601 time or a duration back from now (24h, 7d)')
    .option('--bodies <dir>', `write a self-contained archive into this new directory: ${ARCHIVE_LOG} and bodies/ (verify offline with \`audit verify --file <dir>/${ARCHIVE_LOG} --key K --bodies\`)`)
    .addOption(broker())
    .action(async (o: { since?: string; broker?: string; bodies?: string }) => {
      const since = o.since ? parseSince(o.since, now()) : undefined;
      if (o.bodies) {
        const dir = o.bodies;
        if (existsSync(dir) && readdirSync(dir).length) throw new GuardError('usage', `audit export: --bodies ${dir} exists and is not empty`);
        mkdirSync(dir, { recursive: true });
        const c = await client(o);
        const out = createWriteStream(join(dir, ARCHIVE_LOG), { flags: 'wx' });
        await c.export({ since }, (text) =>
          new Promise<void>((resolve, reject) => {
            out.once('error', reject);
            if (out.write(text)) resolve();
            else out.once('drain', () => resolve());
          }),
        );
        await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
        const r = await fetchArchiveBodies(dir, (sha) => c.body(sha));
        ctx.host.result(`audit archive written to ${dir}: ${ARCHIVE_LOG} and ${r.count} transcript body(ies) (${r.bytes} bytes)`);
        return;
      }
      await (await client(o)).export({ since }, (text) =>
        new Promise<void>((resolve) => {
          if (process.stdout.write(text)) resolve();
          else process.stdout.once('drain', () => resolve());
        }),
      );
    });

  cmd
    .command('flush')
    .description('send spooled transcripts (finished, or recovered from killed runs) to the broker')
    .addOption(jsonOption())
    .addOption(broker())
    .action(async (o: { json?: boolean; broker?: string }) => {
      const session = await brokerSession({ flag: o.broker, env: ctx.env });
      const r = await flushSpool({ spoolDir: defaultSpoolDir(ctx.env), upload: createTranscriptUploader({ brokerUrl: session.brokerUrl, getToken: session.token }) });
      if (o.json) ctx.host.result(JSON.stringify(r, null, 2));
      else {
        ctx.host.result(
          `${r.uploaded.length} transcript(s) sent (${r.recovered.length} recovered as partial), ${r.pending.length} still spooled, ${r.rejected.length} refused`,
        );
        for (const p of r.pending) ctx.host.info(`still spooled: ${p.grantId}: ${p.reason}`);
        for (const p of r.rejected) {
          // A damaged entry (torn file) is moved aside once and no longer blocks anything: reported, not an error exit.
          ctx.host.warn(p.code === 'damaged' ? `${p.message}; moved to ${p.movedTo}` : `refused by the broker: ${p.grantId} (${p.code}); kept in ${p.movedTo}`);
        }
      }
      const unreachable = r.pending.some((p) => p.reason !== 'run in progress');
      if (r.rejected.some((p) => p.code !== 'damaged')) ctx.exitCode = EXIT.DENIED;
      else if (unreachable) ctx.exitCode = EXIT.UNAVAILABLE;
    });

  return cmd;
}
