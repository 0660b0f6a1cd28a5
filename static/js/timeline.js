// A session's events, as the main chat (floor, replies, passes, cast
// markers, per-turn cost) and the confer drawer (deliberation, grouped by
// turn, linked both ways). Used live and, read-only, by the viewer.
//
// Events are applied in seq order; one already applied is ignored, so a
// reconnect that overlaps never duplicates anything.
//
// Each event changes a plain model of its turn (or adds a marker); what is
// shown is rendered from that model by a TurnWindow (window.js), which keeps
// only the turns near the reader in the DOM. Until `start()` nothing is
// rendered at all, so a session's whole history is applied first and then
// drawn once: the newest turns, or the turn a link asks for.
//
// Past 400 lines on purpose: each event's change to the model sits beside
// its change to a shown turn, so the two ways a turn is drawn (whole, from
// the model, and in place, as events arrive) are read and kept together.

import { h, usd, count, seatColour } from './dom.js';
import { face } from './library.js';
import { TurnWindow } from './window.js';
import { searchRecord } from './search.js';

function ms(x) {
  return x === null || x === undefined ? '—' : `${Math.round(x).toLocaleString('en-US')} ms`;
}

/** One readable line of a turn's provenance. */
export function provenanceText(p) {
  const parts = [
    `${p.provider} · ${p.reported_model || p.model}${p.reported_model && p.reported_model !== p.model ? ` (asked for ${p.model})` : ''}`,
    `request ${p.request_id || 'unknown'}`,
    `stopped: ${p.stop_reason || 'unknown'}`,
    `first byte ${ms(p.ttfb_ms)} · total ${ms(p.duration_ms)}${p.output_tokens_per_s ? ` · ${p.output_tokens_per_s.toFixed(1)} tokens/s` : ''}`,
    `max_tokens ${p.max_tokens}${p.temperature !== undefined && p.temperature !== null ? ` · temperature ${p.temperature}` : ''}`,
  ];
  if (p.constraint) parts.push(`format held by the server (${p.constraint})`);
  parts.push(`prompt prefix ${String(p.prefix_hash).slice(0, 12)}`);
  return parts.join(' · ');
}

export class Timeline {
  constructor({ chat, drawer, onChange = () => {}, onRetry = null, turnHref = null, onBranch = null, onReplay = null, sessionHref = null, onConfer = () => {} }) {
    this.replays = null;       // the session's counterfactual turns (replays.js), once read
    this.turnHref = turnHref;
    this.onBranch = onBranch;
    this.onReplay = onReplay;  // starts a replay of a finished turn (replay-form.js)
    this.sessionHref = sessionHref;
    this.onChange = onChange;
    this.onRetry = onRetry;
    this.onConfer = onConfer; // opens the confer drawer, where it can be closed
    this.lastSeq = 0;
    this.people = new Map();   // id → { name, colour }
    this.onStage = [];
    this.turns = new Map();    // turn → its model (see turn())
    this.confers = new Map();  // turn → its confer group: { turn, lines }
    this.corpus = [];          // what the search box searches (search.js)
    this.hit = null;           // the seq of the search match shown, if any
    this.seats = new Set();    // the named seats that have spoken
    this.maxTurn = 0;
    this.totals = { usd: 0, input: 0, cache_write: 0, cache_read: 0, output: 0, priced: true, pings: 0, pings_usd: 0 };
    this.inFlight = false;
    this.closed = false;
    this.title = '';
    this.started = false;
    this.chat = new TurnWindow({ list: chat, render: (e) => this.render(e) });
    this.drawer = new TurnWindow({ list: drawer, scroller: () => drawer.closest('.drawer') || drawer, render: (g) => this.renderConfer(g) });
  }

  person(id) {
    return this.people.get(id) || { name: id, colour: '#888888' };
  }

  /** Applies one logged event; returns false if it was already applied. */
  apply(ev) {
    if (ev.seq <= this.lastSeq) return false;
    this.lastSeq = ev.seq;
    const handler = this[`on_${ev.kind.replace(/-/g, '_')}`];
    if (handler) handler.call(this, ev);
    const found = searchRecord(ev);
    if (found) this.corpus.push(found);
    this.onChange(ev);
    return true;
  }

  /** Draws what has been applied: the newest turns, or around turn `at`. */
  start(at = null) {
    this.started = true;
    this.chat.showEnd();
    this.drawer.showEnd();
    if (at) this.jump(at);
  }

  /** Whether the chat shows the newest entries (so following the end makes sense). */
  atEnd() {
    return this.chat.atEnd();
  }

  /** Scrolls the chat to turn `n` (the nearest turn there is). */
  jump(n) {
    const i = this.nearest(this.chat, n, (e) => e.kind === 'turn');
    if (i >= 0) this.chat.showAt(i);
    return i >= 0;
  }

  /** Scrolls the confer drawer to turn `n`'s group. */
  jumpConfer(n) {
    this.onConfer();
    this.drawer.showAt(this.drawer.find((g) => g.turn === n));
  }

  nearest(win, n, test) {
    const exact = win.find((e) => test(e) && e.turn === n);
    if (exact >= 0) return exact;
    const after = win.find((e) => test(e) && e.turn > n);
    return after >= 0 ? after : win.entries.findLastIndex(test);
  }

  /** Shows a search match (a record of `corpus`), marked, in the middle of its list. */
  reveal(rec) {
    this.hit = rec.seq;
    for (const el of document.querySelectorAll('.search-hit')) el.classList.remove('search-hit');
    const confer = rec.where === 'confer';
    if (confer) this.onConfer();
    const win = confer ? this.drawer : this.chat;
    const i = confer ? win.find((g) => g.turn === rec.turn) : win.find((e) => e.kind === 'turn' && e.turn === rec.turn);
    if (i < 0) return;
    win.showAt(i);
    const el = win.entries[i].el.querySelector(`[data-seq="${rec.seq}"]`);
    if (el) {
      el.classList.add('search-hit');
      win.showAt(i, { centre: true, el });
    }
  }

  /** A marker between turns (`content`: a function, so it can be drawn again). */
  note(content, cls = 'marker', seq = null) {
    this.chat.push({ kind: 'note', turn: this.maxTurn, seq, content, cls });
  }

  marker(ev, content) {
    this.note(content, 'marker', ev.seq);
  }

  on_session_open(ev) {
    this.title = ev.config.title;
    for (const p of ev.participants) this.people.set(p.id, { id: p.id, name: p.name, colour: p.colour, avatar: p.avatar });
    this.onStage = ev.participants.map((p) => p.id);
    if (ev.parent) {
      const p = ev.parent;
      const how = p.carry === 'recap' ? 'a recap' : 'its transcript';
      this.marker(ev, () => h('span', {}, 'Continued from ',
        this.sessionHref ? h('a', { class: 'parent-link', href: this.sessionHref(p.id) }, p.id) : h('code', {}, p.id),
        ` at turn ${p.turn}, carrying ${how}`));
    }
  }

  on_join(ev) {
    if (ev.materials) this.people.set(ev.character, { id: ev.character, name: ev.materials.name, colour: ev.materials.colour, avatar: ev.materials.avatar });
    if (!this.onStage.includes(ev.character)) this.onStage.push(ev.character);
    const who = this.person(ev.character);
    const text = `${who.name} ${ev.materials ? 'joined' : 'returned'}`;
    this.marker(ev, () => h('span', {}, h('span', { class: 'dot', '--c': who.colour }), text));
  }

  on_leave(ev) {
    this.onStage = this.onStage.filter((id) => id !== ev.character);
    const who = this.person(ev.character);
    this.marker(ev, () => h('span', {}, h('span', { class: 'dot', '--c': who.colour }), `${who.name} left — `, h('q', {}, ev.line)));
  }

  // A room's several lines of one turn are each their own human-speak.
  on_human_speak(ev) {
    const t = this.turn(ev.turn);
    const line = { seq: ev.seq, text: ev.text, to: ev.to || null, seat: ev.seat || null };
    t.floors = [...(t.floors || []), line];
    t.floor = t.floors[0];
    if (line.seat) this.seats.add(line.seat);
    this.redraw(t);
  }

  on_turn_start(ev) {
    const t = this.turn(ev.turn);
    this.inFlight = true;
    t.inFlight = true;
    const confers = ev.mode === 'panel';
    t.status = confers ? 'The panel is conferring…' : 'Answering…';
    if (confers) this.conferGroup(ev.turn);
    else t.noConfer = true;
    this.redraw(t);
  }

  on_deliberation(ev) {
    const g = this.conferGroup(ev.turn);
    g.lines.push({ seq: ev.seq, speaker: ev.speaker, text: ev.text });
    this.drawer.refresh(g);
  }

  /** Ephemeral typing: grows a live bubble until the final speak replaces it. */
  delta(ev) {
    if (ev.turn < this.maxTurn || this.closed) return;
    const t = this.turn(ev.turn);
    let reply = t.live.get(ev.speaker);
    const fresh = !reply;
    if (fresh) {
      reply = { kind: 'speak', speaker: ev.speaker, text: '', typing: true, seq: null };
      t.live.set(ev.speaker, reply);
      t.replies.push(reply);
    }
    reply.text += ev.text;
    t.status = `${this.person(ev.speaker).name} is speaking…`;
    if (!t.dom) return;
    // While typing, only the text and the status change.
    if (fresh) this.addReply(t, reply);
    else t.dom.texts.get(reply).textContent = reply.text;
    t.dom.status.textContent = t.status;
  }

  on_speak(ev) {
    const t = this.turn(ev.turn);
    const live = t.live.get(ev.speaker);
    if (live) {
      Object.assign(live, { text: ev.text, typing: false, seq: ev.seq });
      t.live.delete(ev.speaker);
      // The typed bubble becomes the final one, in place.
      const text = t.dom?.texts.get(live);
      if (text) this.chat.keep(() => {
        text.textContent = live.text;
        text.parentElement.classList.remove('typing');
        text.parentElement.dataset.seq = live.seq;
      });
    } else {
      const reply = { kind: 'speak', speaker: ev.speaker, text: ev.text, typing: false, seq: ev.seq };
      t.replies.push(reply);
      this.addReply(t, reply);
    }
  }

  on_pass(ev) {
    const t = this.turn(ev.turn);
    const live = t.live.get(ev.speaker);
    if (live) {
      t.replies = t.replies.filter((r) => r !== live);
      t.dom?.texts.get(live)?.parentElement.remove();
    }
    t.live.delete(ev.speaker);
    const reply = { kind: 'pass', speaker: ev.speaker, seq: ev.seq };
    t.replies.push(reply);
    this.addReply(t, reply);
  }

  on_unparsed(ev) {
    const t = this.turn(ev.turn);
    const reply = { kind: 'unparsed', reason: ev.reason, raw: ev.raw, seq: ev.seq };
    t.replies.push(reply);
    this.addReply(t, reply);
  }

  count(ev) {
    for (const k of ['input', 'cache_write', 'cache_read', 'output']) this.totals[k] += ev[k];
    if (ev.usd === null || ev.usd === undefined) this.totals.priced = false;
    else this.totals.usd += ev.usd;
  }

  on_cost(ev) {
    this.count(ev);
    if (ev.turn === 0) {
      // The recap that opened a continued session: spent before any turn.
      this.marker(ev, () => h('span', { class: 'recap-cost' }, `The recap carried over was written for ${usd(ev.usd)}`));
      return;
    }
    const t = this.turn(ev.turn);
    const split = `input ${count(ev.input)} · cache write ${count(ev.cache_write)} · cache read ${count(ev.cache_read)} · output ${count(ev.output)} tokens`;
    t.cost = {
      text: usd(ev.usd),
      title: `${split}${ev.simulated ? ' (simulated)' : ''}`,
      detail: `${split}${ev.simulated ? ' · simulated by the rehearsal engine' : ''} · ${ev.model}`,
    };
    this.redraw(t);
  }

  // A keep-warm ping is spent money: it counts in the totals like a turn.
  on_keep_warm(ev) {
    for (const k of ['input', 'cache_write', 'cache_read']) this.totals[k] += ev[k];
    this.totals.pings += 1;
    if (ev.usd === null || ev.usd === undefined) this.totals.priced = false;
    else { this.totals.usd += ev.usd; this.totals.pings_usd += ev.usd; }
  }

  on_turn_end(ev) {
    const t = this.turn(ev.turn);
    t.ended = true;
    if (ev.provenance) {
      t.provenance = provenanceText(ev.provenance);
      t.requestId = ev.provenance.request_id || '';
    }
    this.settle(t);
    t.status = '';
    this.redraw(t);
  }

  on_turn_aborted(ev) {
    const t = this.turn(ev.turn);
    this.settle(t);
    t.aborted = true;
    t.status = `Turn aborted (${ev.reason}).`;
    this.redraw(t);
  }

  on_error(ev) {
    this.note(() => [h('b', {}, ev.code), ' ', ev.message], 'error', ev.seq);
  }

  on_actor_restart(ev) {
    this.marker(ev, () => `Session actor restarted: ${ev.reason}`);
  }

  on_log_repair(ev) {
    this.marker(ev, () => `Log repaired after a crash (${ev.torn_bytes} torn bytes cut)`);
  }

  on_session_close(ev) {
    this.closed = true;
    this.inFlight = false;
    this.note(() => 'Session closed', 'marker closed', ev.seq);
  }

  currentTurn() {
    return this.maxTurn;
  }

  settle(t) {
    this.inFlight = false;
    t.inFlight = false;
    for (const reply of t.live.values()) reply.typing = false;
    t.live.clear();
  }

  /** A turn's model, made (and added to the chat) when first met. */
  turn(n) {
    let t = this.turns.get(n);
    if (t) return t;
    t = {
      kind: 'turn', turn: n, floor: null, replies: [], live: new Map(), status: '', inFlight: false,
      aborted: false, ended: false, noConfer: false, cost: null, provenance: null, requestId: null, detailOpen: false,
    };
    this.turns.set(n, t);
    this.maxTurn = Math.max(this.maxTurn, n);
    this.chat.push(t);
    return t;
  }

  conferGroup(n) {
    let g = this.confers.get(n);
    if (!g) {
      g = { kind: 'confer', turn: n, lines: [] };
      this.confers.set(n, g);
      this.drawer.push(g);
    }
    return g;
  }

  render(e) {
    if (e.kind === 'turn') return this.renderTurn(e);
    const seq = e.seq === null ? {} : { seq: e.seq };
    return h('li', { class: e.cls, role: e.cls === 'error' ? 'alert' : null, dataset: seq }, e.content());
  }

  // A shown turn changes in place: its head (floor, cost, status) is drawn
  // again, and replies are added to it, so what is already there — and
  // announced to a screen reader, the chat being a live region — stays.
  // A turn that is not shown only changes its model, and is drawn from it
  // when it comes into view.

  /** Draws a shown turn's head again, and its classes. */
  redraw(t) {
    if (!t.dom) return;
    this.chat.keep(() => {
      const head = this.head(t);
      for (const part of ['row', 'detail', 'meta']) t.dom[part].replaceWith(head[part]);
      Object.assign(t.dom, head);
      t.el.className = this.turnClass(t);
      if (t.requestId !== null) t.el.dataset.requestId = t.requestId;
      for (const [r, text] of t.dom.texts) text.parentElement.classList.toggle('typing', r.typing);
    });
  }

  /** The session's replays are known: shown turns that have some show them. */
  showReplays(replays) {
    this.replays = replays;
    for (const t of this.turns.values()) if (t.dom && replays.label(t.turn)) this.chat.refresh(t);
  }

  /** Adds a reply to a shown turn. */
  addReply(t, r) {
    if (!t.dom) return;
    this.chat.keep(() => t.dom.replies.append(this.renderReply(r, t.dom.texts)));
  }

  turnClass(t) {
    return `turn${t.inFlight ? ' in-flight' : ''}${t.aborted ? ' aborted' : ''}`;
  }

  renderTurn(t) {
    const n = t.turn;
    const head = this.head(t);
    const texts = new Map();
    const replies = h('div', { class: 'replies' }, t.replies.map((r) => this.renderReply(r, texts)));
    const data = t.requestId === null ? { turn: n } : { turn: n, requestId: t.requestId };
    const replayed = this.replays ? this.replays.render(n, (id) => this.person(id)) : null;
    const el = h('li', { class: this.turnClass(t), id: `turn-${n}`, dataset: data }, head.row, head.detail, head.meta, replies, replayed);
    t.dom = { ...head, replies, texts };
    return el;
  }

  /** A turn's floor row (cost, number, floor line), cost detail and meta line (links, status). */
  head(t) {
    const n = t.turn;
    const detail = h('div', { class: 'cost-detail', hidden: !t.detailOpen }, t.cost ? t.cost.detail : '',
      t.provenance ? h('div', { class: 'provenance' }, t.provenance) : null);
    const title = [t.cost?.title, t.provenance].filter(Boolean).join('\n');
    const cost = h('button', { type: 'button', class: 'cost', disabled: !t.cost, title: title || null, 'aria-label': `Cost of turn ${n}` }, t.cost ? t.cost.text : '…');
    cost.addEventListener('click', () => { t.detailOpen = !t.detailOpen; detail.hidden = !t.detailOpen; });
    // Only a finished turn can be branched from.
    const branch = this.onBranch ? h('button', { type: 'button', class: 'link branch', hidden: !t.ended, title: 'A new session carrying the conversation up to this turn', onclick: () => this.onBranch(n) }, 'Branch from here') : null;
    const replay = this.onReplay ? h('button', { type: 'button', class: 'link replay', hidden: !t.ended, title: 'Play this turn again with everything before it held fixed: rerolls, another model, or each voice alone', onclick: () => this.onReplay(n) }, 'Replay…') : null;
    const f = t.floor;
    const floor = h('div', { class: 'floors' }, (t.floors || [null]).map((l) => h('div', {
      class: `floor${l && l.seat ? ' seated' : ''}${l && l.seq === this.hit ? ' search-hit' : ''}`,
      '--c': l && l.seat ? seatColour(l.seat) : null,
      dataset: l ? { seq: l.seq, ...(l.seat ? { seat: l.seat } : {}) } : {},
    },
    l && l.seat ? h('span', { class: 'seat' }, l.seat) : null,
    l && l.to ? h('span', { class: 'to' }, `to ${this.person(l.to).name}`) : null,
    l ? h('span', { class: 'floor-text' }, l.text) : null)));
    const status = h('span', { class: 'status', role: 'status' }, t.status,
      t.aborted && this.onRetry && f ? [' ', h('button', { type: 'button', class: 'link retry', onclick: () => this.onRetry(f.text) }, 'Send again')] : null);
    const row = h('div', { class: 'floor-row' }, cost,
      this.turnHref ? h('a', { class: 'turn-no', href: this.turnHref(n), title: 'Link to this turn' }, `Turn ${n}`) : h('span', { class: 'turn-no' }, `Turn ${n}`),
      floor);
    const meta = h('div', { class: 'turn-meta' }, h('button', { type: 'button', class: 'link confer-link', hidden: t.noConfer, dataset: { turn: n } }, 'confer ›'), branch, replay, status);
    return { row, detail, meta, status };
  }

  renderReply(r, texts) {
    const hit = r.seq !== null && r.seq === this.hit ? ' search-hit' : '';
    if (r.kind === 'pass') return h('p', { class: `pass${hit}`, dataset: { speaker: r.speaker, seq: r.seq } }, `${this.person(r.speaker).name} passes`);
    if (r.kind === 'unparsed') return h('details', { class: 'unparsed' }, h('summary', {}, `Unplaced model output (${r.reason})`), h('pre', {}, r.raw));
    const who = this.person(r.speaker);
    const text = h('div', { class: 'text' }, r.text);
    texts.set(r, text);
    return h('article', { class: `msg${r.typing ? ' typing' : ''}${hit}`, '--c': who.colour, dataset: r.seq === null ? { speaker: r.speaker } : { speaker: r.speaker, seq: r.seq } },
      h('header', {}, face(who), who.name), text);
  }

  renderConfer(g) {
    const lines = g.lines.map((l) => {
      const who = this.person(l.speaker);
      return h('p', { class: `line${l.seq === this.hit ? ' search-hit' : ''}`, '--c': who.colour, dataset: { seq: l.seq } }, h('b', {}, who.name), ' ', l.text);
    });
    return h('section', { class: `confer-turn${g.lines.length ? '' : ' empty'}`, id: `confer-${g.turn}` },
      h('h3', {}, h('button', { type: 'button', class: 'link turn-link', dataset: { turn: g.turn } }, `Turn ${g.turn}`)),
      h('div', { class: 'lines' }, lines));
  }
}
