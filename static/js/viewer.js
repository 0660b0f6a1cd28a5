// The viewer: recorded sessions, read-only, from files alone (index.json,
// events.jsonl, session.json) at relative URLs, so `logs/` plus this page
// can be published to any static host.
//
// Routes: #/ the list · #/s/<id> a session · #/s/<id>/t/<n> a session
// played up to the end of turn n · #/s/<id>/dynamics its charts (from the
// dynamics.json written beside it) · #/compare/<a>,<b>[,…][/t/<n>] sessions
// side by side (compare.js) · #/study/<id> a study's page (study.js).
//
// The list groups a study's sessions under their study; any sessions can be
// picked with checkboxes and compared.
//
// A continued session links to its parent, and a parent to the sessions
// continued from it (found in index.json). "Branch from here" calls panel's
// API, so it is offered only when panel itself serves the page, never on a
// static host.

import { api } from './api.js';
import { h, clear, usd, when, count, toast } from './dom.js';
import { Timeline } from './timeline.js';
import { playerFinder } from './search.js';
import { renderDynamics } from './dynamics.js';
import { avatarsFromExport, face } from './library.js';
import { showCompare } from './compare.js';
import { showStudy, studyGroups, picker } from './study.js';
import { fetchJson } from './recorded.js';
import { Replays } from './replays.js';

const view = document.getElementById('view');
let player = null;
// Whether panel serves this page (its API answers), asked once.
let served = null;

async function servedByPanel() {
  if (served === null) {
    served = fetch('api/providers', { headers: { Accept: 'application/json' } })
      .then((r) => r.ok && (r.headers.get('content-type') || '').includes('json'))
      .catch(() => false);
  }
  return served;
}

async function branch(id, turn) {
  try {
    const info = await api('POST', `/api/sessions/${id}/continue`, { at_turn: turn });
    location.href = `./#/s/${info.id}`;
  } catch (e) {
    toast(e.message);
  }
}

async function showList() {
  document.getElementById('session-title').textContent = '';
  document.title = 'panel · recorded sessions';
  clear(view).append(h('p', { class: 'muted' }, 'Loading…'));
  let index;
  try {
    index = await fetchJson('logs/index.json');
  } catch (e) {
    clear(view).append(h('div', { class: 'sessions-page' }, h('p', { class: 'error-text' }, `No recorded sessions found (${e.message}).`)));
    return;
  }
  const links = { compare: (ids) => `#/compare/${ids.join(',')}`, session: (id) => `#/s/${id}`, study: (id) => `#/study/${id}` };
  const pick = picker(links);
  const groups = await studyGroups(index.sessions, links, pick);
  const rows = index.sessions.filter((s) => !s.study).map((s) => h('li', { class: 'session-row' },
    h('div', { class: 'session-link-row' }, pick.box(s.id, `Pick ${s.title} to compare`),
      h('a', { class: 'session-link', href: `#/s/${s.id}` }, h('span', { class: 'session-name' }, s.title))),
    h('div', { class: 'session-meta' },
      h('span', {}, s.cast.join(', ')),
      h('span', {}, `${s.turns} turn${s.turns === 1 ? '' : 's'}`),
      h('span', {}, usd(s.usd)),
      h('span', {}, s.model),
      h('time', { datetime: s.created }, when(s.created)),
      s.parent ? h('a', { class: 'link parent-link', href: `#/s/${s.parent.id}` }, `continued from turn ${s.parent.turn} of…`) : null,
      s.parent ? h('a', { class: 'link', href: links.compare([s.parent.id, s.id]), title: 'This session beside the one it continues' }, 'compare with its parent') : null)));
  clear(view).append(h('div', { class: 'sessions-page' }, h('section', {},
    h('h1', {}, 'Recorded sessions'),
    index.sessions.length ? pick.bar : null,
    groups,
    rows.length ? h('ul', { class: 'session-list' }, rows) : null,
    index.sessions.length ? null : h('p', { class: 'muted' }, 'No closed sessions yet.'))));
}

/** Step-through playback of one session's events. */
class Player {
  constructor(id, manifest, events, { children = [], live = false } = {}) {
    this.id = id;
    this.manifest = manifest;
    this.events = events;
    this.children = children;
    this.live = live;
    this.position = 0;
    this.timer = null;
    // Read once; each timeline the player builds is given them.
    this.replays = null;
    new Replays('logs', id).load().then((r) => { this.replays = r; this.timeline?.showReplays(r); });
    this.chat = h('ol', { class: 'chat', 'aria-label': 'Conversation' });
    this.drawer = h('div', { class: 'drawer-list' });
    this.scrubber = h('input', { type: 'range', min: '0', max: String(events.length), value: '0', 'aria-label': 'Playback position' });
    this.label = h('span', { class: 'position muted small', role: 'status' });
    this.playButton = h('button', { type: 'button', class: 'control', 'aria-label': 'Play', onclick: () => this.toggle() }, '▶');
    this.scrubber.addEventListener('input', () => this.seek(Number(this.scrubber.value)));
    this.keys = (e) => this.key(e);
    document.addEventListener('keydown', this.keys);
  }

  render() {
    const t = this.manifest.totals;
    const controls = h('div', { class: 'playback' },
      h('button', { type: 'button', class: 'control', 'aria-label': 'Previous turn', title: 'Previous turn (Shift+←)', onclick: () => this.turn(-1) }, '«'),
      h('button', { type: 'button', class: 'control', 'aria-label': 'Previous line', title: 'Previous line (←)', onclick: () => this.seek(this.position - 1) }, '‹'),
      this.playButton,
      h('button', { type: 'button', class: 'control', 'aria-label': 'Next line', title: 'Next line (→)', onclick: () => this.seek(this.position + 1) }, '›'),
      h('button', { type: 'button', class: 'control', 'aria-label': 'Next turn', title: 'Next turn (Shift+→)', onclick: () => this.turn(1) }, '»'),
      this.scrubber, this.label);
    // The manifest has no avatars; the log says which each character had.
    const avatars = new Map();
    for (const e of this.events) {
      if (e.kind === 'session-open') for (const p of e.participants) avatars.set(p.id, p.avatar);
      if (e.kind === 'join' && e.materials) avatars.set(e.character, e.materials.avatar);
    }
    const cast = this.manifest.participants.map((p) => h('span', { class: 'chip small', '--c': p.colour, dataset: { id: p.id } },
      face({ id: p.id, colour: p.colour, avatar: avatars.get(p.id) }, p.colour), p.name));
    return h('div', { class: 'chat-view' },
      h('div', { class: 'substrip' }, h('span', { class: 'chips' }, cast), h('span', { class: 'spacer' }),
        playerFinder(this).el,
        h('span', { class: 'totals' }, `${t.turns} turns · ${usd(t.usd)} · ${Math.round(t.cache_read_share * 100)}% cache reads · ${count(t.input + t.cache_write + t.cache_read)} input tokens`),
        h('a', { class: 'link small', href: `logs/${this.id}/transcript.md` }, 'transcript')),
      this.children.length ? h('p', { class: 'continued-in muted small' }, 'Continued in: ',
        this.children.map((c) => h('a', { class: 'child-link', href: `#/s/${c.id}` }, `${c.title} (from turn ${c.parent.turn})`))) : null,
      controls,
      h('div', { class: 'chat-body' },
        h('section', { class: 'chat-pane' }, this.chat),
        h('aside', { class: 'drawer', 'aria-label': 'Confer' }, h('div', { class: 'drawer-head' }, h('h2', {}, 'Confer')), this.drawer)));
  }

  /** Shows the session as it stood after `n` events. */
  seek(n) {
    n = Math.max(0, Math.min(this.events.length, n));
    if (n < this.position || !this.timeline) {
      clear(this.chat);
      clear(this.drawer);
      this.timeline = new Timeline({
        chat: this.chat,
        drawer: this.drawer,
        turnHref: (turn) => `#/s/${this.id}/t/${turn}`,
        sessionHref: (id) => `#/s/${id}`,
        onBranch: this.live ? (turn) => branch(this.id, turn) : null,
      });
      if (this.replays) this.timeline.replays = this.replays;
      this.position = 0;
    }
    while (this.position < n) this.timeline.apply(this.events[this.position++]);
    // Drawn once the events are applied: only the turns near the reader.
    if (!this.timeline.started) this.timeline.start();
    this.scrubber.value = String(n);
    const turn = this.timeline.currentTurn();
    this.label.textContent = `turn ${turn} of ${this.manifest.totals.turns} · line ${n} of ${this.events.length}`;
    if (n >= this.events.length) this.stop();
  }

  /** Moves to the end of the next or previous turn. */
  turn(direction) {
    const ends = this.events.map((e, i) => (e.kind === 'turn-end' || e.kind === 'turn-aborted' ? i + 1 : null)).filter((i) => i !== null);
    const target = direction > 0 ? ends.find((i) => i > this.position) : [...ends].reverse().find((i) => i < this.position);
    this.seek(target ?? (direction > 0 ? this.events.length : 0));
  }

  /** The position just after turn `n` ends. */
  endOf(n) {
    const i = this.events.findIndex((e) => e.turn === n && (e.kind === 'turn-end' || e.kind === 'turn-aborted'));
    return i < 0 ? this.events.length : i + 1;
  }

  toggle() {
    if (this.timer) this.stop();
    else {
      if (this.position >= this.events.length) this.seek(0);
      this.timer = setInterval(() => this.seek(this.position + 1), 350);
      this.playButton.textContent = '‖';
      this.playButton.setAttribute('aria-label', 'Pause');
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.playButton.textContent = '▶';
    this.playButton.setAttribute('aria-label', 'Play');
  }

  key(e) {
    if (e.target.closest && e.target.closest('input, textarea') && e.target !== this.scrubber) return;
    const moves = { ArrowRight: () => (e.shiftKey ? this.turn(1) : this.seek(this.position + 1)), ArrowLeft: () => (e.shiftKey ? this.turn(-1) : this.seek(this.position - 1)), Home: () => this.seek(0), End: () => this.seek(this.events.length), ' ': () => this.toggle() };
    if (moves[e.key]) {
      e.preventDefault();
      moves[e.key]();
    }
  }

  close() {
    this.stop();
    document.removeEventListener('keydown', this.keys);
  }
}

async function showSession(id, turn) {
  if (player && player.id === id) {
    player.seek(turn ? player.endOf(turn) : player.events.length);
    if (turn) player.timeline.jump(turn);
    return;
  }
  player?.close();
  clear(view).append(h('p', { class: 'muted' }, 'Loading…'));
  let manifest, text;
  // Asked for together: the list (for continuations) and the API check too.
  const others = Promise.all([fetchJson('logs/index.json').catch(() => ({ sessions: [] })), servedByPanel()]);
  try {
    const log = fetch(`logs/${id}/events.jsonl`);
    manifest = await fetchJson(`logs/${id}/session.json`);
    const res = await log;
    if (!res.ok) throw new Error(`events.jsonl: ${res.status}`);
    text = await res.text();
  } catch (e) {
    clear(view).append(h('div', { class: 'sessions-page' }, h('p', { class: 'error-text' }, e.message), h('a', { href: '#/' }, '← All sessions')));
    return;
  }
  const events = text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const [index, live] = await others;
  if (!live) avatarsFromExport();
  const children = index.sessions.filter((s) => s.parent && s.parent.id === id);
  document.getElementById('session-title').textContent = manifest.title;
  document.title = `${manifest.title} · panel`;
  player = new Player(id, manifest, events, { children, live });
  clear(view).append(player.render());
  player.seek(turn ? player.endOf(turn) : events.length);
  if (turn) player.timeline.jump(turn);
}

async function showDynamics(id) {
  player?.close();
  player = null;
  const root = h('div', { class: 'dynamics-page' });
  clear(view).append(h('div', { class: 'sessions-page' }, h('a', { href: `#/s/${id}` }, '← The session'), root));
  try {
    await renderDynamics(root, await fetchJson(`logs/${id}/dynamics.json`));
  } catch (e) {
    clear(root).append(h('p', { class: 'error-text' }, e.message));
  }
}

let compared = null;

function route() {
  const c = location.hash.match(/^#\/compare\/([a-z0-9,-]+?)(?:\/t\/(\d+))?$/);
  if (c) {
    const turn = c[2] ? Number(c[2]) : null;
    // Moving between turns of the page already open only scrolls.
    if (compared && compared.ids === c[1]) return turn && compared.jump(turn);
    leave();
    closePlayer();
    return showCompare(view, c[1].split(',').filter(Boolean), turn).then((page) => { compared = page; });
  }
  leave();
  const st = location.hash.match(/^#\/study\/([A-Za-z0-9-]+)$/);
  if (st) {
    closePlayer();
    return showStudy(view, st[1]);
  }
  const d = location.hash.match(/^#\/s\/([a-z0-9-]+)\/dynamics$/);
  if (d) return showDynamics(d[1]);
  const m = location.hash.match(/^#\/s\/([a-z0-9-]+)(?:\/t\/(\d+))?/);
  if (m) showSession(m[1], m[2] ? Number(m[2]) : null);
  else {
    closePlayer();
    showList();
  }
}

/** Closes the compare page, if it is open. */
function leave() {
  compared?.close();
  compared = null;
}

function closePlayer() {
  player?.close();
  player = null;
}

window.addEventListener('hashchange', route);
route();
