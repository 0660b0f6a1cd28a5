// Talking to the panel server: REST with JSON errors, SSE and WebSocket URLs.
// Behind `panel serve --token`, the server turns the `?token=` of the first
// visit into an HttpOnly session cookie and drops it from the address bar, so
// the page never holds the token: every request here is let in by the cookie.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'network', 'The panel server cannot be reached.');
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = data && data.error ? data.error : { code: 'http', message: `${res.status} ${res.statusText}` };
    throw new ApiError(res.status, err.code, err.message);
  }
  return data;
}

/** A file the server serves (e.g. a session's live log), as text. */
export async function fetchText(path) {
  const res = await fetch(path, { cache: 'no-store' });
  if (!res.ok) throw new ApiError(res.status, 'http', `${path}: ${res.status} ${res.statusText}`);
  return res.text();
}

/** The session's input channel; `seat`: the name this browser speaks as, if any. */
export function socketUrl(id, seat = null) {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const named = seat ? `&seat=${encodeURIComponent(seat)}` : '';
  return `${scheme}://${location.host}/api/sessions/${encodeURIComponent(id)}/ws?events=none${named}`;
}
