/**
 * Completes a device login the way a person would in a browser, over real HTTP: open the verification page, enter
 * the user code, confirm the device, fill in username and password. Cookies are kept by hand (a tiny jar keyed by
 * name; the IdP is a single loopback origin) and redirects are followed manually so every step is visible.
 * Used by the lead's end-to-end tests and this project's own login tests.
 */
export interface DeviceLoginOptions {
  /** `verification_uri` from the device authorization response (or `verification_uri_complete`). */
  verificationUri: string;
  userCode: string;
  username: string;
  password: string;
  /** Press "No, abort" on the confirmation page instead of logging in (RFC 8628 access_denied). */
  abort?: boolean;
  fetch?: typeof fetch;
}

export interface DeviceLoginResult {
  /** The final page's HTML. */
  html: string;
  /** True when the IdP showed its success page. */
  ok: boolean;
  /** URLs visited, in order (no secrets: they carry only interaction ids). */
  visited: string[];
}

interface ParsedForm {
  id: string | undefined;
  action: string;
  method: string;
  fields: Record<string, string>;
}

function decodeEntities(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCharCode(parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag);
  return m ? decodeEntities(m[2] ?? m[3] ?? '') : undefined;
}

/** Every <form> with its hidden and pre-filled inputs. */
export function parseForms(html: string, base: string): ParsedForm[] {
  const forms: ParsedForm[] = [];
  const re = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi;
  for (let m = re.exec(html); m; m = re.exec(html)) {
    const open = `<form${m[1]}>`;
    const fields: Record<string, string> = {};
    for (const input of m[2]!.match(/<input\b[^>]*>/gi) ?? []) {
      const name = attr(input, 'name');
      if (name) fields[name] = attr(input, 'value') ?? '';
    }
    forms.push({
      id: attr(open, 'id'),
      action: new URL(attr(open, 'action') ?? base, base).href,
      method: (attr(open, 'method') ?? 'get').toLowerCase(),
      fields,
    });
  }
  return forms;
}

export async function completeDeviceLogin(opts: DeviceLoginOptions): Promise<DeviceLoginResult> {
  const f = opts.fetch ?? fetch;
  const jar = new Map<string, string>();
  const visited: string[] = [];

  const request = async (url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<{ url: string; html: string; status: number }> => {
    let current = url;
    let method = init.method ?? 'GET';
    let body: string | undefined = init.form ? new URLSearchParams(init.form).toString() : undefined;
    for (let hop = 0; hop < 10; hop++) {
      visited.push(`${method} ${new URL(current).pathname}`);
      const headers: Record<string, string> = {};
      if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const res = await f(current, { method, headers, body: body ?? null, redirect: 'manual' });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const i = pair!.indexOf('=');
        const name = pair!.slice(0, i).trim();
        const value = pair!.slice(i + 1).trim();
        if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === '') jar.delete(name);
        else jar.set(name, value);
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        current = new URL(location, current).href;
        method = 'GET';
        body = undefined;
        continue;
      }
      return { url: current, html: await res.text(), status: res.status };
    }
    throw new Error('device login: too many redirects');
  };

  const submit = async (page: { url: string; html: string }, pick: (f: ParsedForm) => boolean, values: Record<string, string> = {}) => {
    const form = parseForms(page.html, page.url).find(pick);
    if (!form) throw new Error(`device login: expected form not found on ${new URL(page.url).pathname}`);
    return request(form.action, { method: form.method.toUpperCase(), form: { ...form.fields, ...values } });
  };

  // 1. The verification page (verification_uri_complete auto-submits the code with a <noscript> button).
  let page = await request(opts.verificationUri);
  if ('user_code' in (parseForms(page.html, page.url)[0]?.fields ?? {}) && !/id="user-code"/.test(page.html)) {
    page = await submit(page, () => true);
  } else {
    page = await submit(page, (x) => 'user_code' in x.fields, { user_code: opts.userCode });
  }
  // 2. Confirm (or abort) the device.
  if (opts.abort) {
    page = await submit(page, (x) => 'abort' in x.fields);
    return { html: page.html, ok: false, visited };
  }
  page = await submit(page, (x) => 'confirm' in x.fields);
  // 3. Log in.
  if (/id="login"/.test(page.html)) {
    page = await submit(page, (x) => x.id === 'login', { username: opts.username, password: opts.password });
  }
  return { html: page.html, ok: /id="success"/.test(page.html), visited };
}
