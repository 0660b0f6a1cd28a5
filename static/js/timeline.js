// Renders a session's events: the main chat (floor, replies, passes, cast
// markers, per-turn cost) and the confer drawer (deliberation, grouped by
// turn, linked both ways). Used live and, read-only, by the viewer.
//
// Events are applied in seq order; one already applied is ignored, so a
// reconnect that overlaps never duplicates anything.

import { h, usd, count } from './dom.js';
import { face } from './library.js';

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
  constructor({ chat, drawer, onChange = () => {}, onRetry = null, turnHref = null, onBranch = null, sessionHref = null }) {
    this.chat = chat;
    this.turnHref = turnHref;
    this.onBranch = onBranch;
    this.sessionHref = sessionHref;
    this.drawer = drawer;
    this.onChange = onChange;
    this.onRetry = onRetry;
    this.lastSeq = 0;
    this.people = new Map();   // id → { name, colour }
    this.onStage = [];
    this.turns = new Map();    // turn → { el, replies, status, costEl, conferEl, live: Map }
    this.totals = { usd: 0, input: 0, cache_write: 0, cache_read: 0, output: 0, priced: true, pings: 0, pings_usd: 0 };
    this.inFlight = false;
    this.closed = false;
    this.title = '';
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
    this.onChange(ev);
    return true;
  }

  on_session_open(ev) {
    this.title = ev.config.title;
    for (const p of ev.participants) this.people.set(p.id, { id: p.id, name: p.name, colour: p.colour, avatar: p.avatar });
    this.onStage = ev.participants.map((p) => p.id);
    if (ev.parent) {
      const p = ev.parent;
      const link = this.sessionHref ? h('a', { class: 'parent-link', href: this.sessionHref(p.id) }, p.id) : h('code', {}, p.id);
      const how = p.carry === 'recap' ? 'a recap' : 'its transcript';
      this.marker(ev, h('span', {}, 'Continued from ', link, ` at turn ${p.turn}, carrying ${how}`));
    }
  }

  on_join(ev) {
    if (ev.materials) this.people.set(ev.character, { id: ev.character, name: ev.materials.name, colour: ev.materials.colour, avatar: ev.materials.avatar });
    if (!this.onStage.includes(ev.character)) this.onStage.push(ev.character);
    const who = this.person(ev.character);
    this.marker(ev, h('span', {}, h('span', { class: 'dot', '--c': who.colour }), `${who.name} ${ev.materials ? 'joined' : 'returned'}`));
  }

  on_leave(ev) {
    this.onStage = this.onStage.filter((id) => id !== ev.character);
    const who = this.person(ev.character);
    this.marker(ev, h('span', {}, h('span', { class: 'dot', '--c': who.colour }), `${who.name} left — `, h('q', {}, ev.line)));
  }

  on_human_speak(ev) {
    const t = this.turn(ev.turn);
    t.floorText = ev.text;
    if (ev.to) t.floor.append(h('span', { class: 'to' }, `to ${this.person(ev.to).name}`));
    t.floor.append(h('span', { class: 'floor-text' }, ev.text));
  }

  on_turn_start(ev) {
    const t = this.turn(ev.turn);
    this.inFlight = true;
    t.el.classList.add('in-flight');
    const confers = ev.mode === 'panel';
    t.status.textContent = confers ? 'The panel is conferring…' : 'Answering…';
    if (confers) this.conferGroup(ev.turn);
    else t.conferLink.hidden = true;
  }

  on_deliberation(ev) {
    const group = this.conferGroup(ev.turn);
    const who = this.person(ev.speaker);
    group.list.append(h('p', { class: 'line', '--c': who.colour }, h('b', {}, who.name), ' ', ev.text));
    group.classList.remove('empty');
  }

  /** Ephemeral typing: grows a live bubble until the final speak replaces it. */
  delta(ev) {
    if (ev.turn < this.currentTurn() || this.closed) return;
    const t = this.turn(ev.turn);
    let bubble = t.live.get(ev.speaker);
    if (!bubble) {
      bubble = this.bubble(ev.speaker, '');
      bubble.classList.add('typing');
      t.live.set(ev.speaker, bubble);
      t.replies.append(bubble);
    }
    bubble.querySelector('.text').textContent += ev.text;
    t.status.textContent = `${this.person(ev.speaker).name} is speaking…`;
  }

  on_speak(ev) {
    const t = this.turn(ev.turn);
    const live = t.live.get(ev.speaker);
    if (live) {
      live.querySelector('.text').textContent = ev.text;
      live.classList.remove('typing');
      t.live.delete(ev.speaker);
    } else {
      t.replies.append(this.bubble(ev.speaker, ev.text));
    }
  }

  on_pass(ev) {
    const t = this.turn(ev.turn);
    t.live.get(ev.speaker)?.remove();
    t.live.delete(ev.speaker);
    t.replies.append(h('p', { class: 'pass', dataset: { speaker: ev.speaker } }, `${this.person(ev.speaker).name} passes`));
  }

  on_unparsed(ev) {
    const t = this.turn(ev.turn);
    t.replies.append(h('details', { class: 'unparsed' }, h('summary', {}, `Unplaced model output (${ev.reason})`), h('pre', {}, ev.raw)));
  }

  on_cost(ev) {
    if (ev.turn === 0) {
      // The recap that opened a continued session: spent before any turn.
      for (const k of ['input', 'cache_write', 'cache_read', 'output']) this.totals[k] += ev[k];
      if (ev.usd === null || ev.usd === undefined) this.totals.priced = false;
      else this.totals.usd += ev.usd;
      this.marker(ev, h('span', { class: 'recap-cost' }, `The recap carried over was written for ${usd(ev.usd)}`));
      return;
    }
    const t = this.turn(ev.turn);
    for (const k of ['input', 'cache_write', 'cache_read', 'output']) this.totals[k] += ev[k];
    if (ev.usd === null || ev.usd === undefined) this.totals.priced = false;
    else this.totals.usd += ev.usd;
    const split = `input ${count(ev.input)} · cache write ${count(ev.cache_write)} · cache read ${count(ev.cache_read)} · output ${count(ev.output)} tokens`;
    t.cost.textContent = usd(ev.usd);
    t.cost.title = `${split}${ev.simulated ? ' (simulated)' : ''}`;
    t.cost.disabled = false;
    t.costDetail.textContent = `${split}${ev.simulated ? ' · simulated by the rehearsal engine' : ''} · ${ev.model}`;
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
    if (t.branch) t.branch.hidden = false;
    if (ev.provenance) {
      // What produced the turn, on hover of its cost and in its detail.
      const p = ev.provenance;
      const made = provenanceText(p);
      t.cost.title = t.cost.title ? `${t.cost.title}\n${made}` : made;
      t.costDetail.append(h('div', { class: 'provenance' }, made));
      t.el.dataset.requestId = p.request_id || '';
    }
    this.settle(t);
    t.status.textContent = '';
  }

  on_turn_aborted(ev) {
    const t = this.turn(ev.turn);
    this.settle(t);
    t.el.classList.add('aborted');
    t.status.textContent = `Turn aborted (${ev.reason}).`;
    if (this.onRetry && t.floorText) {
      t.status.append(' ', h('button', { type: 'button', class: 'link retry', onclick: () => this.onRetry(t.floorText) }, 'Send again'));
    }
  }

  on_error(ev) {
    this.chat.append(h('li', { class: 'error', role: 'alert' }, h('b', {}, ev.code), ' ', ev.message));
  }

  on_actor_restart(ev) {
    this.marker(ev, `Session actor restarted: ${ev.reason}`);
  }

  on_log_repair(ev) {
    this.marker(ev, `Log repaired after a crash (${ev.torn_bytes} torn bytes cut)`);
  }

  on_session_close() {
    this.closed = true;
    this.inFlight = false;
    this.chat.append(h('li', { class: 'marker closed' }, 'Session closed'));
  }

  currentTurn() {
    return Math.max(0, ...this.turns.keys());
  }

  settle(t) {
    this.inFlight = false;
    t.el.classList.remove('in-flight');
    for (const bubble of t.live.values()) bubble.classList.remove('typing');
    t.live.clear();
  }

  marker(ev, content) {
    this.chat.append(h('li', { class: 'marker', dataset: { seq: ev.seq } }, content));
  }

  bubble(speaker, text) {
    const who = this.person(speaker);
    return h('article', { class: 'msg', '--c': who.colour, dataset: { speaker } },
      h('header', {}, face(who), who.name),
      h('div', { class: 'text' }, text));
  }

  turn(n) {
    let t = this.turns.get(n);
    if (t) return t;
    const cost = h('button', { type: 'button', class: 'cost', disabled: true, 'aria-label': `Cost of turn ${n}` }, '…');
    const costDetail = h('div', { class: 'cost-detail', hidden: true });
    cost.addEventListener('click', () => { costDetail.hidden = !costDetail.hidden; });
    const conferLink = h('button', { type: 'button', class: 'link confer-link', dataset: { turn: n } }, 'confer ›');
    // Only a finished turn can be branched from.
    const branch = this.onBranch ? h('button', { type: 'button', class: 'link branch', hidden: true, title: 'A new session carrying the conversation up to this turn', onclick: () => this.onBranch(n) }, 'Branch from here') : null;
    const floor = h('div', { class: 'floor' });
    const status = h('span', { class: 'status', role: 'status' });
    const replies = h('div', { class: 'replies' });
    const el = h('li', { class: 'turn', id: `turn-${n}`, dataset: { turn: n } },
      h('div', { class: 'floor-row' }, cost,
        this.turnHref ? h('a', { class: 'turn-no', href: this.turnHref(n), title: 'Link to this turn' }, `Turn ${n}`) : h('span', { class: 'turn-no' }, `Turn ${n}`),
        floor),
      costDetail,
      h('div', { class: 'turn-meta' }, conferLink, branch, status),
      replies);
    this.chat.append(el);
    t = { el, floor, status, replies, cost, costDetail, conferLink, branch, live: new Map(), floorText: '' };
    this.turns.set(n, t);
    return t;
  }

  conferGroup(n) {
    const id = `confer-${n}`;
    let el = this.drawer.querySelector(`#${id}`);
    if (!el) {
      const list = h('div', { class: 'lines' });
      el = h('section', { class: 'confer-turn empty', id },
        h('h3', {}, h('button', { type: 'button', class: 'link turn-link', dataset: { turn: n } }, `Turn ${n}`)), list);
      el.list = list;
      this.drawer.append(el);
    }
    return el;
  }
}
