import { describe, expect, it } from 'vitest';
import { describeRequest } from '../../src/approvals/requester.js';
import { slackMessage } from '../../src/approvals/webhook.js';
import { escapeHtml, html, jsonIsland, visibleText } from '../../src/console/html.js';
import { alice, approveDecision, deleteBucket, newService } from '../approvals/fixtures.js';

// Where the console is linked from (the CLI's request lines, the webhook payloads), and the escaping every
// console page is built with.
describe('console links', () => {
  it('with a console, every summary carries its page; the CLI prints it next to the id; Slack links it', async () => {
    const { service } = await newService({ consoleUrl: 'https://guard.example.com/' });
    const a = await service.open({ requester: alice, invocation: deleteBucket('b'), target: 'prod', decision: approveDecision(), reason: 'r' });
    expect(a.url).toBe(`https://guard.example.com/ui/approvals/${a.id}`);
    expect((await service.list())[0]!.url).toBe(a.url);
    const lines = describeRequest(a, Date.now());
    expect(lines[0]).toContain(a.id);
    expect(lines[1]).toBe(`  console:  ${a.url}`);
    const slack = JSON.stringify(slackMessage({ type: 'approval.requested', deliveryId: 'd', at: a.createdAt, actor: 'alice', approval: a }));
    expect(slack).toContain(`<${a.url}|${a.id}>`);
  });

  it('without a console, no url and no console line', async () => {
    const { service } = await newService();
    const a = await service.open({ requester: alice, invocation: deleteBucket('b'), target: 'prod', decision: approveDecision(), reason: 'r' });
    expect(a.url).toBeUndefined();
    expect(describeRequest(a, Date.now()).join('\n')).not.toContain('console:');
  });
});

describe('console html escaping', () => {
  it('escapes every interpolated value, nested templates stay markup', async () => {
    const evil = `<script>alert("x")</script>' onload='x`;
    expect(html`<p title="${evil}">${evil}</p>`.text).toBe('<p title="&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#39; onload=&#39;x">&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#39; onload=&#39;x</p>');
    expect(html`<ul>${['<a>', html`<li>ok</li>`]}</ul>`.text).toBe('<ul>&#60;a&#62;<li>ok</li></ul>');
    expect(escapeHtml('&amp;')).toBe('&#38;amp;');
  });

  it('a JSON data island cannot be closed by its content', async () => {
    const island = jsonIsland('d', { s: '</script><script>alert(1)</script>\u2028' }).text;
    expect(island.match(/<\/script>/g)).toHaveLength(1);
    expect(JSON.parse(island.slice(island.indexOf('>') + 1, island.lastIndexOf('<')))).toEqual({ s: '</script><script>alert(1)</script>\u2028' });
  });

  it('makes control characters and bidi overrides visible', async () => {
    expect(visibleText('a\u001b[2Jb\u0007c\td\ne\u202ef\u009b')).toBe('a\\x1b[2Jb\\x07c\td\ne\\u{202e}f\\x9b');
  });
});
