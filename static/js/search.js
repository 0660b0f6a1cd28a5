// Find in a session: a search box over its text (floor lines, speaks and the
// confer) and a "jump to turn" box. With only a window of turns in the DOM
// (window.js), the browser's find-in-page cannot see most of a long session,
// so this searches the session's records — every line of the whole history,
// kept as the events arrive — never the DOM, and hands each match to
// `reveal(record)`, which brings its turn on screen and marks it.

import { h } from './dom.js';

/** The searchable text of one logged event, or null. */
export function searchRecord(ev) {
  const where = { 'human-speak': 'floor', speak: 'speak', deliberation: 'confer' }[ev.kind];
  if (!where || !ev.text) return null;
  return { seq: ev.seq, turn: ev.turn, where, speaker: ev.speaker || null, text: ev.text, lower: ev.text.toLowerCase() };
}

export class Finder {
  /** `corpus()`: the records to search; `reveal(record)`; `jump(turn)`; `turns()`: how many there are. */
  constructor({ corpus, reveal, jump, turns }) {
    this.corpus = corpus;
    this.reveal = reveal;
    this.matches = [];
    this.at = -1;
    this.query = '';
    this.input = h('input', { type: 'search', class: 'search-input', placeholder: 'Search this session', 'aria-label': 'Search this session', enterkeyhint: 'search' });
    this.countEl = h('span', { class: 'search-count muted small', role: 'status', 'aria-live': 'polite' });
    const prev = h('button', { type: 'button', class: 'icon search-prev', 'aria-label': 'Previous match', title: 'Previous match (Shift+Enter)', onclick: () => this.step(-1) }, '↑');
    const next = h('button', { type: 'button', class: 'icon search-next', 'aria-label': 'Next match', title: 'Next match (Enter)', onclick: () => this.step(1) }, '↓');
    const search = h('form', { class: 'search', role: 'search', onsubmit: (e) => { e.preventDefault(); this.step(1); } }, this.input, this.countEl, prev, next);
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && e.shiftKey) { e.preventDefault(); this.step(-1); }
      if (e.key === 'Escape') { this.input.value = ''; this.update(); }
    });
    this.input.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.update(), 120);
    });
    this.turnInput = h('input', { type: 'number', class: 'jump-input', min: '1', placeholder: 'turn', 'aria-label': 'Jump to turn', title: 'Jump to turn' });
    const jumpForm = h('form', { class: 'jump', onsubmit: (e) => {
      e.preventDefault();
      const n = Number(this.turnInput.value);
      if (Number.isInteger(n) && n >= 1) jump(Math.min(n, turns() || n));
    } }, this.turnInput);
    this.el = h('span', { class: 'finder' }, search, jumpForm);
  }

  /** Finds the matches for what is typed now. */
  update() {
    clearTimeout(this.timer);
    const q = this.input.value.trim().toLowerCase();
    if (q === this.query) return;
    this.query = q;
    this.matches = q ? this.corpus().filter((r) => r.lower.includes(q)) : [];
    this.at = -1;
    this.showCount();
  }

  /** Moves to the next (or previous) match and shows it. */
  step(direction) {
    this.update();
    if (!this.matches.length) { this.showCount(); return; }
    const n = this.matches.length;
    this.at = this.at < 0 ? (direction > 0 ? 0 : n - 1) : (this.at + direction + n) % n;
    this.showCount();
    this.reveal(this.matches[this.at]);
  }

  showCount() {
    const n = this.matches.length;
    this.countEl.textContent = !this.query ? '' : n === 0 ? 'no match' : this.at < 0 ? `${n} match${n === 1 ? '' : 'es'}` : `${this.at + 1} of ${n}`;
  }
}

/**
 * The viewer's finder: it searches the whole recording, and a match or a
 * turn past the playback position first plays on to the end of its turn.
 */
export function playerFinder(player) {
  const corpus = player.events.map(searchRecord).filter(Boolean);
  const reach = (turn) => {
    const end = player.endOf(turn);
    if (end > player.position) player.seek(end);
  };
  return new Finder({
    corpus: () => corpus,
    reveal: (rec) => { reach(rec.turn); player.timeline.reveal(rec); },
    jump: (n) => { reach(n); player.timeline.jump(n); },
    turns: () => player.manifest.totals.turns,
  });
}
