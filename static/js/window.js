// A window over a long list of entries — a session's turns and markers in
// the chat, or its confer groups in the drawer: only a stretch of them is in
// the DOM at once, so opening a 1,000-turn session costs what is on screen,
// not what is in the log.
//
// Invariants:
// - `entries` is the whole list, in order; entries [lo, hi) are rendered,
//   in order and contiguous, each as `entry.el` (null when not rendered, and
//   `entry.dom`, the element references a renderer keeps, is dropped with
//   it, so a dropped entry keeps no DOM alive: memory stays flat).
// - Adding or removing elements above what the reader sees never moves it:
//   every change is made around an anchor (the first entry in view), whose
//   position on screen is put back afterwards. The browser's own scroll
//   anchoring is off for these lists (app.css), so the two never fight.
// - At most MAX entries are rendered; the far side (from the anchor) goes.
// - A new entry is rendered only while the window reaches the end; otherwise
//   it waits in `entries` until the reader scrolls down to it.
// The list may hold other elements after the entries (the chat's queued
// lines): entries are only ever inserted next to each other.

const SIZE = 40; // entries rendered when a session opens or a turn is jumped to
const STEP = 20; // entries added as the reader nears an edge
const MAX = 100; // most entries rendered at once

export class TurnWindow {
  /**
   * `list`: the element the entries go in; `scroller()`: the element that
   * scrolls (found when first needed: it may not exist yet); `render(entry)`:
   * a fresh element for an entry.
   */
  constructor({ list, scroller = () => list, render }) {
    this.list = list;
    this.scrollerOf = scroller;
    this.render = render;
    this.entries = [];
    this.lo = 0;
    this.hi = 0;
    this.started = false;
    this.queued = false;
    this.bound = null;
  }

  get scroller() {
    return this.scrollerOf();
  }

  /** Whether the window reaches the newest entry. */
  atEnd() {
    return this.hi === this.entries.length;
  }

  /** Adds an entry at the end; it is rendered if the window reaches the end. */
  push(entry) {
    entry.el = null;
    this.entries.push(entry);
    if (!this.started || this.hi !== this.entries.length - 1) return;
    const el = this.make(entry);
    const last = this.hi > this.lo ? this.entries[this.hi - 1].el : null;
    if (last) last.after(el);
    else this.list.prepend(el);
    this.hi += 1;
    if (this.hi - this.lo > MAX) this.keep(() => this.trim());
  }

  /** Renders an entry again after its content changed (if it is shown). */
  refresh(entry) {
    if (!entry.el) return;
    this.keep(() => {
      const old = entry.el;
      entry.dom = null;
      old.replaceWith(this.make(entry));
    });
  }

  /** Shows the newest entries, scrolled to the end. */
  showEnd() {
    this.reset(Math.max(0, this.entries.length - SIZE), this.entries.length);
    const s = this.scroller;
    s.scrollTop = s.scrollHeight;
  }

  /** Shows entry `i` at the top of the view (or centred), rendering around it if need be. */
  showAt(i, { centre = false, el = null } = {}) {
    if (i < 0 || i >= this.entries.length) return;
    if (!this.entries[i].el) {
      const lo = Math.max(0, i - 5);
      this.reset(lo, Math.min(this.entries.length, lo + SIZE));
    }
    const target = el || this.entries[i].el;
    const s = this.scroller;
    const box = s.getBoundingClientRect();
    const r = target.getBoundingClientRect();
    s.scrollTop += centre ? r.top - box.top - (s.clientHeight - r.height) / 2 : r.top - box.top - 8;
    this.schedule();
  }

  /** Index of the first entry that satisfies `test`, or -1. */
  find(test) {
    return this.entries.findIndex(test);
  }

  /** Forgets what is rendered and renders entries [lo, hi). */
  reset(lo, hi) {
    this.bind();
    for (let i = this.lo; i < this.hi; i += 1) this.drop(this.entries[i]);
    const frag = document.createDocumentFragment();
    for (let i = lo; i < hi; i += 1) frag.append(this.make(this.entries[i]));
    this.list.prepend(frag);
    this.lo = lo;
    this.hi = hi;
    this.started = true;
    // Short entries may not fill the view, and then no scroll would ever ask for more.
    this.schedule();
  }

  bind() {
    const s = this.scroller;
    if (this.bound === s) return;
    this.bound = s;
    s.addEventListener('scroll', () => this.schedule(), { passive: true });
  }

  make(entry) {
    entry.dom = null;
    entry.el = this.render(entry);
    return entry.el;
  }

  drop(entry) {
    entry.el?.remove();
    entry.el = null;
    entry.dom = null;
  }

  /** Checks the edges on the next frame (once, however many scroll events). */
  schedule() {
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.check();
    });
  }

  /** Within a screen of an edge with more beyond it: render more there. */
  check() {
    const s = this.scroller;
    if (!this.started || !s.clientHeight) return;
    const margin = s.clientHeight;
    let grew = false;
    if (s.scrollTop < margin && this.lo > 0) {
      this.keep(() => {
        const lo = Math.max(0, this.lo - STEP);
        const frag = document.createDocumentFragment();
        for (let i = lo; i < this.lo; i += 1) frag.append(this.make(this.entries[i]));
        this.entries[this.lo].el.before(frag);
        this.lo = lo;
        this.trim();
      });
      grew = true;
    } else if (s.scrollHeight - s.scrollTop - s.clientHeight < margin && this.hi < this.entries.length) {
      this.keep(() => {
        const hi = Math.min(this.entries.length, this.hi + STEP);
        const frag = document.createDocumentFragment();
        for (let i = this.hi; i < hi; i += 1) frag.append(this.make(this.entries[i]));
        this.entries[this.hi - 1].el.after(frag);
        this.hi = hi;
        this.trim();
      });
      grew = true;
    }
    // Short entries may still leave the edge within reach.
    if (grew) this.schedule();
  }

  /** The first rendered entry whose bottom is below the scroller's top. */
  anchor() {
    const s = this.scroller;
    if (!s.clientHeight) return null;
    const top = s.getBoundingClientRect().top;
    for (let i = this.lo; i < this.hi; i += 1) {
      const r = this.entries[i].el.getBoundingClientRect();
      if (r.bottom > top) return { i, top: r.top };
    }
    return null;
  }

  /** Runs `change`, then scrolls so the anchor is where it was on screen. */
  keep(change) {
    const a = this.anchor();
    this.anchorAt = a ? a.i : null;
    change();
    this.anchorAt = null;
    const el = a && this.entries[a.i].el;
    if (!el) return;
    const moved = el.getBoundingClientRect().top - a.top;
    if (Math.abs(moved) >= 0.5) this.scroller.scrollTop += moved;
  }

  /** Drops entries from the side farther from the anchor until MAX remain. */
  trim() {
    const a = this.anchorAt ?? this.hi - 1;
    while (this.hi - this.lo > MAX) {
      if (a - this.lo > this.hi - 1 - a) this.drop(this.entries[this.lo++]);
      else this.drop(this.entries[--this.hi]);
    }
  }
}
