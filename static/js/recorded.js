// Reading recorded files at relative URLs — `logs/index.json`,
// `logs/<id>/events.jsonl`, `session.json`, `dynamics.json`,
// `logs/studies/<id>/study.json` and `report.json`, a session's
// `replays/index.json` and replay logs — so the viewer's pages
// work served by panel (at /logs) and from any static host alike. A missing
// file is an error naming the file, never a machine path.

export async function fetchJson(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.json();
}

/** The events of the JSON-lines log at `url`, in log order. */
async function fetchLog(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  const text = await res.text();
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** The events of session `id`, in log order. */
export function fetchEvents(id) {
  return fetchLog(`logs/${id}/events.jsonl`);
}

/**
 * Session `id`'s replays, each its listing (from `replays/index.json`) and
 * its log's events; none when the session has no replays (or the site does
 * not carry them). A replay whose log is missing is left out.
 */
export async function fetchReplays(id) {
  const index = await fetchJson(`logs/${id}/replays/index.json`).catch(() => null);
  if (!index) return [];
  const read = await Promise.all((index.replays || []).map((listing) =>
    fetchLog(`logs/${id}/replays/${encodeURIComponent(listing.id)}.jsonl`).then((events) => ({ listing, events })).catch(() => null)));
  return read.filter(Boolean);
}

/** A study's record, or null when this site does not carry it. */
export function fetchStudy(id) {
  return fetchJson(`logs/studies/${encodeURIComponent(id)}/study.json`).catch(() => null);
}

/** Who each speaker id is (name, colour), from the log's cast and joiners. */
export function people(events) {
  const out = new Map();
  for (const e of events) {
    if (e.kind === 'session-open') for (const p of e.participants) out.set(p.id, { id: p.id, name: p.name, colour: p.colour, avatar: p.avatar });
    if (e.kind === 'join' && e.materials) out.set(e.character, { id: e.character, name: e.materials.name, colour: e.materials.colour, avatar: e.materials.avatar });
  }
  return out;
}

/** The studies the index's sessions belong to, by id, each with its sessions. */
export function studiesOf(sessions) {
  const out = new Map();
  for (const s of sessions) {
    if (!s.study) continue;
    if (!out.has(s.study.id)) out.set(s.study.id, []);
    out.get(s.study.id).push(s);
  }
  return out;
}
