import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { isGuardError, oneLine } from '../errors.js';
import { VERSION } from '../version.js';
import {
  McpTools,
  approvalStatusInput,
  approvalStatusOutput,
  awsCallInput,
  awsCallOutput,
  explainInput,
  explainOutput,
  type CallContext,
  type McpOptions,
} from './tools.js';

/**
 * `guard-aws mcp`: the guard behind a Model Context Protocol server (spec 2025-06-18, built on the official SDK).
 * Descriptions are written for a model: what the tool does, what a result means and what to do next.
 */

const INSTRUCTIONS = `guard-aws runs AWS CLI calls on behalf of a signed-in person, under policies enforced by a central broker.
Every call is judged (allow, approve, deny) and runs with short-lived credentials scoped to exactly that call; output is masked and recorded in an audit log.
Use aws_explain to see how a call would be judged without running it. A call that needs approval returns status "approval_pending" with an approval id: tell the user who must approve, poll approval_status, then call aws_call again with the same call and approvalId.
A denial is final for that call: do not retry it with variations meant to get around the policy.`;

const AWS_CALL = `Run one AWS CLI call through guard-aws, exactly as the \`guard-aws\` command would: same identity (the user's login or token — never chosen by this tool), same broker, policies, approvals, secret masking and audit transcript.
Give the call as "argv" (array of arguments without "aws", preferred) or as one "command" line (quoted like a shell, but never run by a shell: no pipes, redirections or variables).
The result is structured:
- status "ok" (exit 0) or "failed" (aws exited non-zero; see stderr): aws ran; stdout/stderr are aws's output with secrets replaced by a mask token, cut at the server's size limit (stdoutBytes states the full size, stdoutTruncated says whether it was cut; narrow the call with --query or filters if it was).
- status "denied": the policy forbids this call (rule and reason say why). Not an error in the tool; do not try to work around it.
- status "approval_pending": a human must approve first. "approval" holds the request id, the approver groups, how many approvals are needed and when it expires; approval.consoleUrl is always null for now (there is no web console yet: approvers run \`guard-aws approvals approve ID\`). Wait with approval_status, then call aws_call again with exactly the same call and approvalId set.
- status "approval_denied" / "approval_expired" / "approval_used" / "approval_closed": that approval cannot be used.
- status "cancelled" or "timeout": the call was stopped (a pending approval is withdrawn, aws is stopped).
- status "error": the guard could not run the call (error.code and error.message say why: usage, parse, auth_required, broker_unreachable…).
The call never blocks longer than waitSeconds (capped by the server) waiting for an approval; progress notifications are sent while it waits or runs.`;

const EXPLAIN = `Show how guard-aws understands an AWS CLI call without running it: the operation, the IAM actions and resources it needs, risk signals, and the decision (allow, approve or deny) with the deciding rule and the approvers an approval would need.
Judged locally with this server's policy files; the broker decides again with its own when aws_call runs, so treat the decision as a forecast. Secret parameter values are masked in the echoed argv.`;

const STATUS = `Get the state of an approval request (from an aws_call result with status "approval_pending"): pending, approved, denied, expired, used or withdrawn, with who approved so far and when it expires.
With waitSeconds, wait (politely, polling the broker) up to that long for the request to leave "pending". When it is "approved", call aws_call again with exactly the same call and approvalId. Waiting here never withdraws the request.`;

function asResult(structured: Record<string, unknown>, isError: boolean): CallToolResult {
  // Structured content for clients that read it, and the same JSON as text for those that do not (spec: tools/
  // structured content "SHOULD also return the serialized JSON in a TextContent block").
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured, isError };
}

/** A guard error from explain or approval_status: a tool error with one line naming what was wrong. */
function errorResult(e: unknown): CallToolResult {
  const message = isGuardError(e) ? `${e.code}: ${oneLine(e.message)}` : 'internal: internal error (a bug in guard-aws)';
  return { content: [{ type: 'text', text: message }], isError: true };
}

type Extra = {
  signal: AbortSignal;
  _meta?: { progressToken?: string | number } | undefined;
  sendNotification: (n: { method: 'notifications/progress'; params: { progressToken: string | number; progress: number; message?: string } }) => Promise<void>;
};

function contextOf(extra: Extra): CallContext {
  const token = extra._meta?.progressToken;
  let n = 0;
  return {
    signal: extra.signal,
    progress: (message) => {
      if (token === undefined || extra.signal.aborted) return;
      // Progress must increase with each notification (spec: utilities/progress); there is no known total.
      extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: ++n, message } }).catch(() => undefined);
    },
  };
}

export function createMcpServer(o: McpOptions): McpServer {
  const tools = new McpTools(o);
  const server = new McpServer({ name: 'guard-aws', version: VERSION }, { instructions: INSTRUCTIONS });
  server.registerTool(
    'aws_call',
    {
      title: 'Run an AWS CLI call through guard-aws',
      description: AWS_CALL,
      inputSchema: awsCallInput,
      outputSchema: awsCallOutput,
      annotations: { destructiveHint: true, openWorldHint: true, idempotentHint: false, readOnlyHint: false },
    },
    async (args, extra) => {
      const r = await tools.awsCall(args, contextOf(extra as Extra));
      return asResult(r, r.status === 'error' || r.status === 'failed');
    },
  );
  server.registerTool(
    'aws_explain',
    {
      title: 'Explain how guard-aws would judge an AWS CLI call',
      description: EXPLAIN,
      inputSchema: explainInput,
      outputSchema: explainOutput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      try {
        return asResult(await tools.explain(args), false);
      } catch (e) {
        return errorResult(e);
      }
    },
  );
  server.registerTool(
    'approval_status',
    {
      title: 'State of a guard-aws approval request',
      description: STATUS,
      inputSchema: approvalStatusInput,
      outputSchema: approvalStatusOutput,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (args, extra) => {
      try {
        return asResult(await tools.approvalStatus(args, contextOf(extra as Extra)), false);
      } catch (e) {
        return errorResult(e);
      }
    },
  );
  return server;
}

/** Serves over this process's stdin/stdout until the client closes stdin. Nothing else may write to stdout. */
export async function serveStdio(o: McpOptions): Promise<void> {
  const { StdioServerTransport } = await import('@modelcontextprotocol/sdk/server/stdio.js');
  const server = createMcpServer(o);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((done) => {
    transport.onclose = () => done();
    process.stdin.once('end', () => void server.close().finally(done));
    process.stdin.once('close', () => void server.close().finally(done));
  });
  await server.connect(transport);
  await closed;
}
