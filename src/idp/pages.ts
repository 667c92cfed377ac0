/**
 * The embedded identity provider's HTML pages. Plain forms with the submit button inside the form and no script,
 * no external fonts or styles: they work in any browser, in a text browser, and for an HTTP client that fills in
 * fields by name (test/helpers/device-login.ts does exactly that).
 */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · guard-aws</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;line-height:1.4}
input{display:block;width:100%;margin:.3rem 0 .8rem;padding:.4rem;box-sizing:border-box}
form{margin:0 0 1rem}button{padding:.4rem 1rem;margin:.2rem .5rem .2rem 0}
.err{color:#b00020}code{font-size:1.4em}</style>
</head>
<body><h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>`;
}

/** Page 1: enter the code shown by `guard-aws login`. `form` is oidc-provider's own form (it carries the xsrf field). */
export function userCodePage(action: string, xsrf: string, error?: string): string {
  return page(
    'Sign in to guard-aws',
    `${error ? `<p class="err">${escapeHtml(error)}</p>` : '<p>Enter the code shown in your terminal.</p>'}
<form id="user-code" method="post" action="${escapeHtml(action)}">
<input type="hidden" name="xsrf" value="${escapeHtml(xsrf)}">
<label for="user_code">Code</label>
<input id="user_code" type="text" name="user_code" autocomplete="off" autofocus>
<button type="submit">Continue</button>
</form>`,
  );
}

/** Page 2: confirm that the code matches the terminal, or abort (which denies the device, RFC 8628 §3.5 access_denied). */
export function confirmPage(action: string, xsrf: string, userCode: string, clientName: string): string {
  const hidden = `<input type="hidden" name="xsrf" value="${escapeHtml(xsrf)}">
<input type="hidden" name="user_code" value="${escapeHtml(userCode)}">`;
  return page(
    'Confirm this device',
    `<p><strong>${escapeHtml(clientName)}</strong> is asking to sign in. Check that your terminal shows this code:</p>
<p><code>${escapeHtml(userCode)}</code></p>
<form id="confirm" method="post" action="${escapeHtml(action)}">
${hidden}
<input type="hidden" name="confirm" value="yes">
<button type="submit">Yes, it matches</button>
</form>
<form id="abort" method="post" action="${escapeHtml(action)}">
${hidden}
<input type="hidden" name="abort" value="yes">
<button type="submit">No, abort</button>
</form>`,
  );
}

/** Page 3: username and password. */
export function loginPage(uid: string, error?: string, username = ''): string {
  const base = `/interaction/${encodeURIComponent(uid)}`;
  return page(
    'Log in',
    `${error ? `<p class="err">${escapeHtml(error)}</p>` : ''}
<form id="login" method="post" action="${base}/login">
<label for="username">Username</label>
<input id="username" type="text" name="username" value="${escapeHtml(username)}" autocomplete="username" autofocus>
<label for="password">Password</label>
<input id="password" type="password" name="password" autocomplete="current-password">
<button type="submit">Log in</button>
</form>
<form id="abort" method="post" action="${base}/abort"><button type="submit">Cancel</button></form>`,
  );
}

/** Page 4: done. Names who signed in, so a wrong account (a shared browser) is noticed at once. */
export function successPage(who?: { username: string; name?: string }): string {
  const as = who ? ` as <strong id="who">${escapeHtml(who.name ? `${who.name} (${who.username})` : who.username)}</strong>` : '';
  return page('Signed in', `<p id="success">You are signed in${as}. You can close this page and return to your terminal.</p>`);
}

/** Errors show the OAuth error code and description only; never a token, a stack or a request body. */
export function errorPage(error: string, description?: string): string {
  return page('Sign-in failed', `<p class="err" id="error">${escapeHtml(error)}${description ? `: ${escapeHtml(description)}` : ''}</p>`);
}
