// The context meter in the strip ("context 43k / 200k", amber from 80%) and
// the way on when the window fills: continue the conversation fresh in a new
// session, carrying its transcript or a recap. The floor's refused line goes
// along, waiting in the new session's composer.

import { api } from './api.js';
import { h, toast } from './dom.js';

const HIGH = 0.8;
// The line the floor could not send, handed to the continued session's composer.
const CARRIED_LINE = 'panel-carried-line';

function tokens(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n % 1e6 ? 1 : 0)}M`;
  if (n >= 10000) return `${Math.round(n / 1000)}k`;
  return n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

/** Continues session `id` fresh (or from `atTurn`), then opens the new one. */
export async function continueSession(id, { carry = 'transcript', atTurn, line } = {}) {
  try {
    const body = { carry };
    if (atTurn !== undefined) body.at_turn = atTurn;
    const info = await api('POST', `/api/sessions/${id}/continue`, body);
    if (line) sessionStorage.setItem(CARRIED_LINE, JSON.stringify({ id: info.id, line }));
    location.hash = `#/s/${info.id}`;
  } catch (e) {
    toast(e.message);
  }
}

/** The line carried over for session `id`, once. */
export function takeCarriedLine(id) {
  const saved = JSON.parse(sessionStorage.getItem(CARRIED_LINE) || 'null');
  if (!saved || saved.id !== id) return null;
  sessionStorage.removeItem(CARRIED_LINE);
  return saved.line;
}

export class ContextMeter {
  /** `mayContinue`: whether this browser may open a continuation (an invitee may not). */
  constructor({ id, pendingLine, mayContinue = true }) {
    this.id = id;
    this.mayContinue = mayContinue;
    this.pendingLine = pendingLine;
    this.full = false;
    this.text = h('span', { class: 'context-text', title: 'How much of the model\'s input window the conversation fills' });
    this.menu = h('div', { class: 'continue-menu', role: 'menu', hidden: true },
      h('p', { class: 'muted small' }, 'A new session with the cast on stage now, carrying this conversation:'),
      h('button', { type: 'button', role: 'menuitem', dataset: { carry: 'transcript' }, onclick: () => this.go('transcript') },
        h('b', {}, 'Its transcript'), h('span', { class: 'tagline' }, 'every delivered line, oldest dropped if too long')),
      h('button', { type: 'button', role: 'menuitem', dataset: { carry: 'recap' }, onclick: () => this.go('recap') },
        h('b', {}, 'A recap'), h('span', { class: 'tagline' }, 'notes the model writes: one extra, priced request')));
    this.button = h('button', { type: 'button', class: 'continue-fresh', 'aria-haspopup': 'menu', hidden: true,
      onclick: () => { this.menu.hidden = !this.menu.hidden; if (!this.menu.hidden) this.menu.querySelector('button')?.focus(); } },
    'Continue fresh');
    this.menu.addEventListener('keydown', (e) => { if (e.key === 'Escape') { this.menu.hidden = true; this.button.focus(); } });
    this.el = h('span', { class: 'context-meter', dataset: { level: 'ok' } }, this.text,
      h('span', { class: 'continue-wrap' }, this.button, this.menu));
    // Shown above the composer once a turn has been refused for size.
    this.banner = h('div', { class: 'context-full', role: 'alert', hidden: true },
      h('span', {}, 'This conversation has filled the model\'s window. Your line is kept: continue fresh and it goes along.'),
      h('button', { type: 'button', class: 'primary', onclick: () => this.go('transcript') }, 'Continue fresh'),
      h('button', { type: 'button', class: 'link', onclick: () => this.go('recap') }, 'with a recap'));
  }

  /** Takes `GET /api/sessions/{id}`: its `context` and whether it is closed. */
  update(detail) {
    const c = detail && detail.context;
    if (!c) return;
    this.closed = detail.closed;
    const share = c.share ?? 0;
    this.text.textContent = c.window ? `context ${tokens(c.tokens)} / ${tokens(c.window)}` : `context ${tokens(c.tokens)}`;
    this.el.dataset.level = this.full || share >= HIGH ? 'high' : 'ok';
    this.render(share);
  }

  /** The provider or the budget said the window is full. */
  markFull() {
    this.full = true;
    this.el.dataset.level = 'high';
    this.render(1);
  }

  render(share) {
    const offer = this.mayContinue && !this.closed && (this.full || share >= HIGH);
    this.button.hidden = !offer;
    this.banner.hidden = !this.mayContinue || this.closed || !this.full;
  }

  go(carry) {
    this.menu.hidden = true;
    continueSession(this.id, { carry, line: this.pendingLine() });
  }
}
