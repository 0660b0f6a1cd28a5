// The composer: Enter sends, Shift+Enter starts a new line, `@` offers the
// characters on stage. While the panel speaks, sending still works: the
// message is queued and shown as such. In a room (several people on the
// floor) it shows the seat this browser speaks as, and asks for one.

import { h, clear } from './dom.js';

export class Composer {
  constructor({ onSend, names, onSeat = null }) {
    this.onSend = onSend;
    this.names = names;
    this.seatButton = onSeat ? h('button', { type: 'button', class: 'link speaking-as', onclick: () => onSeat() }, 'Name yourself') : null;
    this.seatSlot = h('div', { class: 'seat-slot' });
    this.choice = 0;
    this.input = h('textarea', { rows: '2', placeholder: 'Speak to the panel — @Name to ask one of them', 'aria-label': 'Your message', maxlength: '8000' });
    this.hint = h('span', { class: 'hint muted small' }, 'Enter to send · Shift+Enter for a new line');
    this.menu = h('ul', { class: 'mentions', role: 'listbox', hidden: true });
    this.button = h('button', { type: 'submit', class: 'primary' }, 'Send');
    this.el = h('form', { class: 'composer' }, this.seatSlot, this.menu, this.input,
      h('div', { class: 'composer-row' }, this.hint, this.seatButton, this.button));
    this.el.addEventListener('submit', (e) => { e.preventDefault(); this.submit(); });
    this.input.addEventListener('keydown', (e) => this.key(e));
    this.input.addEventListener('input', () => this.suggest());
  }

  async submit() {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = '';
    this.hideMenu();
    const ok = await this.onSend(text);
    if (!ok && !this.input.value) this.input.value = text;
    this.input.focus();
  }

  fill(text) {
    this.input.value = text;
    this.input.focus();
  }

  /** Shows the seat this browser speaks as (or none yet). */
  showSeat(seat, fixed = false) {
    if (!this.seatButton) return;
    this.seatButton.disabled = fixed;
    this.seatButton.textContent = seat ? `speaking as ${seat}` : 'Name yourself';
    this.seatButton.title = seat ? 'Change the name shown beside your lines' : 'Give the name shown beside your lines';
  }

  /** Asks for a seat name in place; resolves with it, or null if put off. */
  askSeat(why, current = '') {
    return new Promise((resolve) => {
      const input = h('input', { type: 'text', maxlength: '32', value: current, 'aria-label': 'Your name in this room', placeholder: 'Your name' });
      const done = (name) => { clear(this.seatSlot); resolve(name); };
      const form = h('div', { class: 'seat-ask', role: 'group', 'aria-label': 'Your name' },
        h('span', { class: 'small' }, why), input,
        h('button', { type: 'button', class: 'primary', onclick: () => { if (input.value.trim()) done(input.value.trim()); } }, 'Speak as this name'),
        current ? h('button', { type: 'button', class: 'link', onclick: () => done('') }, 'Speak without a name') : null,
        h('button', { type: 'button', class: 'link', onclick: () => done(null) }, 'Not now'));
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') { e.preventDefault(); if (input.value.trim()) done(input.value.trim()); }
        if (e.key === 'Escape') done(null);
      });
      clear(this.seatSlot).append(form);
      input.focus();
    });
  }

  setBusy(busy) {
    this.hint.textContent = busy
      ? 'The panel is speaking — what you send now is queued for the next turn'
      : 'Enter to send · Shift+Enter for a new line';
  }

  /** An invite to watch: nothing can be sent from here. */
  setWatching() {
    this.watching = true;
    this.input.disabled = true;
    this.button.disabled = true;
    this.input.placeholder = 'You are watching: this invite lets you follow the session, not speak in it.';
    if (this.seatButton) this.seatButton.hidden = true;
  }

  setClosed(closed) {
    if (this.watching) return;
    this.input.disabled = closed;
    this.button.disabled = closed;
    if (closed) this.input.placeholder = 'This session is closed.';
  }

  matches() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const m = before.match(/(^|\s)@([\p{L}\p{N}-]*)$/u);
    if (!m) return null;
    const prefix = m[2].toLowerCase();
    return { start: before.length - m[2].length - 1, names: this.names().filter((n) => n.toLowerCase().startsWith(prefix)) };
  }

  suggest() {
    const found = this.matches();
    if (!found || found.names.length === 0) { this.hideMenu(); return; }
    this.choice = Math.min(this.choice, found.names.length - 1);
    this.menu.replaceChildren(...found.names.map((name, i) => h('li', {
      role: 'option', 'aria-selected': String(i === this.choice), class: i === this.choice ? 'chosen' : '',
      onmousedown: (e) => { e.preventDefault(); this.pick(name); },
    }, `@${name}`)));
    this.menu.hidden = false;
  }

  pick(name) {
    const found = this.matches();
    if (!found) return;
    const value = this.input.value;
    const caret = this.input.selectionStart;
    this.input.value = `${value.slice(0, found.start)}@${name} ${value.slice(caret)}`;
    const at = found.start + name.length + 2;
    this.input.setSelectionRange(at, at);
    this.hideMenu();
  }

  hideMenu() {
    this.menu.hidden = true;
    this.choice = 0;
  }

  key(e) {
    if (!this.menu.hidden) {
      const options = [...this.menu.children];
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        this.choice = (this.choice + (e.key === 'ArrowDown' ? 1 : options.length - 1)) % options.length;
        this.suggest();
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        this.pick(options[this.choice].textContent.slice(1));
        return;
      }
      if (e.key === 'Escape') { this.hideMenu(); return; }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    }
  }
}
