// One multiplexed event stream (GET /api/events) for many followers: each
// follower says which sessions it shows (and from which seq), whether it
// wants typing deltas, and whether it wants directory notes; this keeps ONE
// EventSource open for the union, and hands each follower only its own.
//
// Used by the SharedWorker (stream-worker.js: one connection for every tab)
// and, where SharedWorker is missing, inside a tab (hub.js).
//
// Positions: for each session, the last seq delivered. When the set of
// sessions changes the stream is reopened with `since` = those positions
// (new sessions from the follower's own position), so nothing is missed or
// repeated; EventSource's own reconnects resume from the combined
// Last-Event-ID. Recent events are kept per session, so a follower that
// joins a session already followed is caught up without a new connection;
// if they do not reach back far enough it is told `gap` and reloads the
// session's history itself.

const KINDS = ['session-open', 'human-speak', 'turn-start', 'deliberation', 'speak', 'pass', 'unparsed', 'join',
  'leave', 'cost', 'turn-end', 'turn-aborted', 'error', 'actor-restart', 'log-repair', 'session-close', 'keep-warm',
  'settings'];
const RECENT = 500;

export class Multiplexer {
  /** `base`: where /api lives. */
  constructor({ base = '' } = {}) {
    this.base = base;
    this.followers = new Map(); // follower → { sessions: Map<id, { since, deltas }>, directory, send }
    this.positions = new Map(); // session → last seq delivered
    this.recent = new Map(); // session → recent events, oldest first
    this.presence = new Map(); // session → who is here, as last told
    this.source = null;
    this.key = '';
    // Until a stream is open: a new follower is about to get one.
    this.state = 'connecting';
    this.timer = null;
  }

  /** Adds or replaces a follower's wishes. `send(message)` delivers to it. */
  follow(follower, { sessions = [], directory = false }, send) {
    const wanted = new Map(sessions.map((s) => [s.id, { since: s.since || 0, deltas: !!s.deltas }]));
    this.followers.set(follower, { sessions: wanted, directory, send });
    send({ type: 'state', state: this.source ? this.state : 'connecting' });
    // Catch it up from what is already here.
    for (const [id, { since }] of wanted) {
      if (!this.positions.has(id)) continue;
      const recent = this.recent.get(id) || [];
      const first = recent.length ? recent[0].seq : this.positions.get(id) + 1;
      if (first > since + 1) {
        send({ type: 'gap', session: id });
        continue;
      }
      for (const ev of recent) if (ev.seq > since) send({ type: 'event', data: ev });
      if (this.presence.has(id)) send({ type: 'presence', data: this.presence.get(id) });
    }
    this.schedule();
  }

  unfollow(follower) {
    this.followers.delete(follower);
    this.schedule();
  }

  /** Reopens the stream soon, coalescing a burst of changes. */
  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reconcile(), 30);
  }

  reconcile() {
    const sessions = new Map();
    let directory = false;
    for (const f of this.followers.values()) {
      directory ||= f.directory;
      for (const [id, w] of f.sessions) {
        const had = sessions.get(id);
        sessions.set(id, { since: had ? Math.min(had.since, w.since) : w.since, deltas: (had && had.deltas) || w.deltas });
      }
    }
    const ids = [...sessions.keys()].sort();
    const deltas = ids.filter((id) => sessions.get(id).deltas);
    const key = JSON.stringify([ids, deltas, directory]);
    if (key === this.key && this.source) return;
    this.key = key;
    this.source?.close();
    this.source = null;
    // Sessions no one follows are forgotten.
    for (const id of [...this.positions.keys()]) {
      if (!sessions.has(id)) { this.positions.delete(id); this.recent.delete(id); this.presence.delete(id); }
    }
    if (!ids.length && !directory) { this.setState('offline'); return; }
    const since = ids.map((id) => `${id}:${this.positions.has(id) ? this.positions.get(id) : sessions.get(id).since}`);
    for (const id of ids) if (!this.positions.has(id)) this.positions.set(id, sessions.get(id).since);
    const params = new URLSearchParams({ sessions: ids.join(','), since: since.join(',') || '0' });
    if (deltas.length) params.set('deltas', deltas.join(','));
    if (directory) params.set('directory', '1');
    if (ids.length) params.set('presence', '1');
    this.open(`${this.base}/api/events?${params}`);
  }

  open(url) {
    const source = new EventSource(url);
    this.source = source;
    this.setState('connecting');
    source.onopen = () => this.setState('live');
    source.onerror = (e) => {
      if (e.data !== undefined || this.source !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        this.setState('offline');
        // A refused stream is not retried by EventSource: try again, from the positions held.
        setTimeout(() => { if (this.source === source) { this.key = ''; this.reconcile(); } }, 2000);
      } else {
        this.setState('reconnecting');
      }
    };
    for (const kind of KINDS) source.addEventListener(kind, (e) => this.event(JSON.parse(e.data)));
    source.addEventListener('speak-delta', (e) => this.deliver(JSON.parse(e.data), 'delta', (w) => w.deltas));
    source.addEventListener('presence', (e) => {
      const presence = JSON.parse(e.data);
      this.presence.set(presence.session, presence);
      this.deliver(presence, 'presence', () => true);
    });
    source.addEventListener('stream-error', (e) => this.deliver(JSON.parse(e.data), 'stream-error', () => true));
    source.addEventListener('directory', () => {
      for (const f of this.followers.values()) if (f.directory) f.send({ type: 'directory' });
    });
  }

  event(ev) {
    if (ev.seq <= (this.positions.get(ev.session) ?? 0) && this.positions.has(ev.session)) return;
    this.positions.set(ev.session, ev.seq);
    const recent = this.recent.get(ev.session) || [];
    recent.push(ev);
    if (recent.length > RECENT) recent.shift();
    this.recent.set(ev.session, recent);
    this.deliver(ev, 'event', () => true);
  }

  deliver(data, type, wants) {
    for (const f of this.followers.values()) {
      const w = f.sessions.get(data.session);
      if (w && wants(w)) f.send({ type, data });
    }
  }

  setState(state) {
    this.state = state;
    for (const f of this.followers.values()) f.send({ type: 'state', state });
  }
}
