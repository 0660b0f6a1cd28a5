// The floor as a room, in the chat: the seat this browser speaks as
// (remembered by the browser, for every session), who is here (the
// `presence` the server sends whenever it changes: seats connected and the
// number of other watchers), and the one question a browser is asked the
// first time it speaks where someone else already has a name.

import { h, clear, seatColour } from './dom.js';

const SEAT_KEY = 'panel.seat';

export class Room {
  /** `composer`: where the name is asked and shown; `onSeat`: the seat changed. */
  constructor({ composer, onSeat }) {
    this.composer = composer;
    this.onSeat = onSeat;
    this.seat = localStorage.getItem(SEAT_KEY) || null;
    this.presence = null;
    this.asked = false;
    this.el = h('span', { class: 'presence', 'aria-label': 'Who is here', hidden: true });
    composer.showSeat(this.seat);
  }

  /** An invite that names the seat: its holder speaks as that one only. */
  fix(seat) {
    this.seat = seat;
    this.fixed = true;
    this.composer.showSeat(seat, true);
  }

  /** Shows who is here in the strip. */
  showPresence(p) {
    this.presence = p;
    const seats = p.seats.map((s) => h('span', { class: 'seat-dot', '--c': seatColour(s), dataset: { seat: s } }, s));
    const watchers = p.watchers ? h('span', { class: 'watchers' }, `${p.watchers} watching`) : null;
    clear(this.el).append(...seats, watchers || '');
    this.el.title = 'Who is here: the named seats connected, and how many others watch';
    this.el.hidden = !seats.length && !watchers;
  }

  /** Whether someone else on the floor has a name here (connected now, or in the history). */
  othersSeated(spoken) {
    const others = (this.presence?.seats || []).filter((s) => s !== this.seat);
    return others.length > 0 || [...spoken].some((s) => s !== this.seat);
  }

  /** Before a line is sent: a browser with no name, in a room, is asked once. */
  async beforeSpeaking(spoken) {
    if (this.seat || this.asked || !this.othersSeated(spoken)) return;
    this.asked = true;
    await this.name('Others here speak under their names. Yours:');
  }

  /** Asks for the name to speak as, and remembers it ('' speaks without one). */
  async name(why) {
    if (this.fixed) return;
    const name = await this.composer.askSeat(why, this.seat || '');
    if (name === null || name === (this.seat || '')) return;
    this.seat = name || null;
    if (name) localStorage.setItem(SEAT_KEY, name);
    else localStorage.removeItem(SEAT_KEY);
    this.composer.showSeat(this.seat);
    this.onSeat(this.seat);
  }

  /**
   * A session whose templates predate seats: here, this browser speaks
   * without its name (still remembered for the others). Whether it had one.
   */
  unseat() {
    if (!this.seat || this.fixed) return false;
    this.seat = null;
    this.composer.showSeat(null);
    this.onSeat(null);
    return true;
  }
}
