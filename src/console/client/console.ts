/**
 * The console's only script (bundled by scripts/bundle.mjs into dist/ui/console.js, served from /ui/assets/).
 * Pages work without it; it adds live updates (server-sent events), expiry countdowns and the transcript player.
 * It never turns data into markup: text goes in through textContent, and the only markup it inserts is an HTML
 * fragment the console server rendered (and escaped) itself.
 */

function countdowns(): void {
  const els = [...document.querySelectorAll<HTMLTimeElement>('time.countdown')];
  if (!els.length) return;
  const tick = () => {
    for (const el of els) {
      const left = Date.parse(el.dateTime) - Date.now();
      if (!Number.isFinite(left)) continue;
      const s = Math.max(0, Math.round(left / 1000));
      el.textContent = left <= 0 ? 'now (expired)' : `in ${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
      el.title = el.dateTime;
    }
  };
  tick();
  setInterval(tick, 1000);
}

function live(onEvent: (data: { id: string; kind: string; status: string }) => void, onRefresh: () => void): void {
  const status = document.getElementById('live-status');
  if (typeof EventSource === 'undefined') return;
  const es = new EventSource('/ui/events');
  es.addEventListener('ready', () => {
    if (status) status.textContent = 'Live: this list updates by itself.';
  });
  es.addEventListener('approval', (e) => {
    try {
      onEvent(JSON.parse((e as MessageEvent<string>).data) as { id: string; kind: string; status: string });
    } catch {
      /* a malformed event is ignored */
    }
  });
  // The broker may have missed changes (its database connection came back): whatever is shown may be stale.
  es.addEventListener('refresh', () => onRefresh());
  es.addEventListener('error', () => {
    if (status) status.textContent = 'Live updates interrupted; reconnecting…';
  });
}

async function refreshLists(): Promise<void> {
  const box = document.getElementById('approval-lists');
  const url = box?.dataset.fragment;
  if (!box || !url) return;
  const res = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
  if (res.status === 401) return location.assign('/ui/login?next=/ui/');
  if (!res.ok) return;
  // Server-rendered and escaped by the console (src/console/pages.ts approvalLists), same origin.
  box.innerHTML = await res.text();
  countdowns();
  document.body.dataset.updated = String(Date.now());
}

function approvalPage(): void {
  const statusEl = document.getElementById('status');
  const id = statusEl?.dataset.approval;
  const changed = (what: string) => {
    const comment = document.getElementById('comment') as HTMLTextAreaElement | null;
    // Do not throw away a comment someone is typing; say instead that the request changed.
    if (comment && comment.value.trim()) {
      const note = document.getElementById('live-note') ?? Object.assign(document.createElement('p'), { id: 'live-note', className: 'notice' });
      note.setAttribute('role', 'status');
      note.textContent = `${what} Reload to see the latest state before deciding.`;
      statusEl?.after(note);
      return;
    }
    location.reload();
  };
  live(
    (ev) => {
      if (ev.id === id) changed(`This request changed (${ev.status}).`);
    },
    () => changed('This request may have changed.'),
  );
}

// --- transcript replay ---

const SGR_COLOURS = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];

interface Style {
  fg?: string;
  bold?: boolean;
}

/**
 * Terminal output as inert text. SGR colour sequences (ESC [ … m: ECMA-48 §8.3.117) become CSS classes from a
 * fixed list; every other escape or control character is shown as visible text (\xNN) and does nothing —
 * no cursor movement, no title setting, no hyperlinks, nothing that could hide or rewrite what ran.
 */
export function renderTerminal(text: string, out: HTMLElement, style: Style): Style {
  let cur: Style = { ...style };
  let buf = '';
  const flush = () => {
    if (!buf) return;
    const span = document.createElement('span');
    if (cur.fg) span.className = `fg-${cur.fg}`;
    if (cur.bold) span.classList.add('bold');
    span.textContent = buf;
    out.appendChild(span);
    buf = '';
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    const code = ch.charCodeAt(0);
    if (ch === '\x1b') {
      const m = /^\x1b\[([0-9;]{0,32})m/.exec(text.slice(i, i + 40));
      if (m) {
        flush();
        cur = applySgr(cur, m[1]!);
        i += m[0].length - 1;
        continue;
      }
      buf += '\\x1b';
      continue;
    }
    if (ch === '\n' || ch === '\t') {
      buf += ch;
      continue;
    }
    if (ch === '\r') {
      // A lone CR would let a later write overprint the line in a real terminal; here it is shown, not obeyed.
      if (text[i + 1] !== '\n') buf += '\\r';
      continue;
    }
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069)) {
      buf += `\\x${code.toString(16).padStart(2, '0')}`;
      continue;
    }
    buf += ch;
  }
  flush();
  return cur;
}

function applySgr(s: Style, params: string): Style {
  const next: Style = { ...s };
  for (const p of (params || '0').split(';')) {
    const n = Number(p || '0');
    if (n === 0) {
      delete next.fg;
      delete next.bold;
    } else if (n === 1) next.bold = true;
    else if (n === 22) delete next.bold;
    else if (n >= 30 && n <= 37) next.fg = SGR_COLOURS[n - 30]!;
    else if (n >= 90 && n <= 97) next.fg = `bright-${SGR_COLOURS[n - 90]!}`;
    else if (n === 39) delete next.fg;
  }
  return next;
}

function decode(b64: string): string {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
}

function replay(): void {
  const data = document.getElementById('replay-data');
  const term = document.getElementById('terminal');
  const play = document.getElementById('replay-play') as HTMLButtonElement | null;
  const all = document.getElementById('replay-all') as HTMLButtonElement | null;
  const speedSel = document.getElementById('replay-speed') as HTMLSelectElement | null;
  const clock = document.getElementById('replay-clock');
  if (!data || !term || !play || !all || !speedSel || !clock) return;
  const chunks = (JSON.parse(data.textContent ?? '{"chunks":[]}') as { chunks: { t: number; s: 'o' | 'e'; d: string }[] }).chunks.map((c) => ({ ...c, text: decode(c.d) }));
  const MAX_GAP = 5000;
  let timer: number | undefined;
  let run = 0;
  const reset = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    run++;
    term.textContent = '';
  };
  const write = (c: (typeof chunks)[number], style: Style): Style => {
    const box = c.s === 'e' ? Object.assign(document.createElement('span'), { className: 'stderr' }) : term;
    const next = renderTerminal(c.text, box, style);
    if (box !== term) term.appendChild(box);
    term.scrollTop = term.scrollHeight;
    return next;
  };
  const showAll = () => {
    reset();
    let st: Style = {};
    for (const c of chunks) st = write(c, st);
    clock.textContent = `${((chunks.at(-1)?.t ?? 0) / 1000).toFixed(1)} s`;
    term.dataset.state = 'done';
  };
  play.addEventListener('click', () => {
    reset();
    const mine = run;
    term.dataset.state = 'playing';
    let i = 0;
    let prev = 0;
    let st: Style = {};
    const step = () => {
      if (mine !== run) return;
      if (i >= chunks.length) {
        term.dataset.state = 'done';
        return;
      }
      const c = chunks[i++]!;
      st = write(c, st);
      clock.textContent = `${(c.t / 1000).toFixed(1)} s`;
      const nextChunk = chunks[i];
      if (!nextChunk) return step();
      const gap = Math.min(Math.max(0, nextChunk.t - prev - (c.t - prev)), MAX_GAP);
      prev = c.t;
      timer = window.setTimeout(step, gap / Math.max(0.1, Number(speedSel.value) || 1));
    };
    const first = chunks[0];
    timer = window.setTimeout(step, first ? Math.min(first.t, MAX_GAP) / Math.max(0.1, Number(speedSel.value) || 1) : 0);
  });
  all.addEventListener('click', showAll);
  showAll();
}

function main(): void {
  const pageName = document.getElementById('main')?.dataset.page;
  countdowns();
  if (pageName === 'home') live(() => void refreshLists(), () => void refreshLists());
  if (pageName === 'approval') approvalPage();
  if (pageName === 'record') replay();
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
  else main();
}
