// A session's counterfactual turns, as its `replays/index.json` records
// them (written by panel's counterfactual module, served at /logs and
// copied by an export): a turn with replays says so ("3 rerolls · solo")
// and opens them beside the original — per character what they said in
// the original, in each reroll and alone, with each sample's lead.
// Nothing is computed here: the summary is the one `panel replay` prints.
// The index is read again whenever it may have changed (a replay started
// here, a turn ended, the page shown again); a turn whose replays are open
// stays open when they are drawn again.

import { h, usd } from './dom.js';

export class Replays {
  /**
   * `base`: the logs folder's URL ('/logs' in the app, 'logs' in the viewer);
   * `compare`: whether to link the compare page (an invitee cannot open it).
   */
  constructor(base, id, { compare = true } = {}) {
    this.id = id;
    this.compare = compare;
    this.url = `${base}/${id}/replays/index.json`;
    this.byTurn = new Map(); // turn → { listings, summary }
    this.opened = new Set(); // turns whose replays the reader has open
  }

  /** Reads the index; a session without replays has none and that is fine. */
  async load() {
    let index;
    try {
      const res = await fetch(this.url, { cache: 'no-store' });
      if (!res.ok) return this;
      index = await res.json();
    } catch {
      return this;
    }
    this.byTurn.clear();
    for (const l of index.replays || []) {
      const t = this.byTurn.get(l.turn) || { listings: [], summary: null };
      t.listings.push(l);
      this.byTurn.set(l.turn, t);
    }
    for (const s of index.turns || []) {
      if (this.byTurn.has(s.turn)) this.byTurn.get(s.turn).summary = s;
    }
    return this;
  }

  /** "3 rerolls · solo", or null when the turn has none. */
  label(turn) {
    const t = this.byTurn.get(turn);
    if (!t) return null;
    const rerolls = t.listings.filter((l) => l.mode === 'reroll').reduce((n, l) => n + l.n, 0);
    const parts = [];
    if (rerolls) parts.push(`${rerolls} reroll${rerolls === 1 ? '' : 's'}`);
    if (t.listings.some((l) => l.mode === 'solo')) parts.push('solo');
    return parts.join(' · ');
  }

  /** The turn's replays beside its original, folded; null when it has none. */
  render(turn, person) {
    const t = this.byTurn.get(turn);
    if (!t || !t.summary) return null;
    const s = t.summary;
    const rerolls = s.samples.filter((v) => v.mode === 'reroll');
    const solos = s.samples.filter((v) => v.mode === 'solo');
    const name = (id) => (id ? person(id).name : '—');
    const said = (x) => (!x ? h('span', { class: 'silent' }, '—')
      : x.did === 'passed' ? h('span', { class: 'pass' }, 'passes') : h('span', { class: 'said' }, x.text));
    // A reroll under other settings says which; the turn's own need no words.
    const listed = new Map(t.listings.map((l) => [l.id, l]));
    const settings = (v) => {
      const l = listed.get(v.replay);
      return l && !l.same_settings ? { text: ` · ${l.model}, depth ${l.depth}`, title: `${l.provider} · ${l.model} · confer depth ${l.depth}` } : { text: '', title: null };
    };
    const columns = [
      { label: 'Original', lead: s.original.lead, usd: s.original.usd, said: (c) => said(s.original.said[c]) },
      ...rerolls.map((v, i) => ({ label: `Reroll ${i + 1}${settings(v).text}${v.finished ? '' : ' (unfinished)'}`, title: settings(v).title, lead: v.lead, usd: v.usd, said: (c) => said(v.said[c]) })),
    ];
    if (solos.length) {
      // Unpriced until at least one answer alone has a price.
      const priced = solos.filter((v) => v.usd !== null && v.usd !== undefined);
      const spentAlone = priced.length ? priced.reduce((sum, v) => sum + v.usd, 0) : null;
      columns.push({ label: 'Alone', lead: null, usd: spentAlone, said: (c) => {
        const mine = solos.filter((v) => v.who === c);
        return mine.length ? mine.map((v) => said(v.said[c])) : said(null);
      } });
    }
    const head = h('tr', {}, h('th', { scope: 'col' }, ''), columns.map((col) => h('th', { scope: 'col', title: col.title }, col.label)));
    const lead = h('tr', { class: 'lead-row' }, h('th', { scope: 'row' }, 'Lead'),
      columns.map((col, i) => h('td', {}, i > 0 && col.label === 'Alone' ? '—' : name(col.lead))));
    const rows = s.characters.map((c) => h('tr', { dataset: { character: c.character } },
      h('th', { scope: 'row', '--c': person(c.character).colour }, name(c.character),
        c.solo_overlap === null || c.solo_overlap === undefined ? null
          : h('small', { class: 'overlap', title: 'word overlap of their answer alone with what they said among the others' }, ` overlap ${c.solo_overlap.toFixed(2)}`)),
      columns.map((col) => h('td', {}, col.said(c.character)))));
    const cost = h('tr', { class: 'cost-row' }, h('th', { scope: 'row' }, 'Cost'), columns.map((col) => h('td', {}, usd(col.usd))));
    const kept = s.rerolls ? `${s.same_lead} of ${s.rerolls} rerolls kept the original lead` : null;
    // Priced apart: what replays cost is never in the session's totals.
    const spent = t.listings.reduce((sum, l) => sum + (l.totals?.usd || 0), 0);
    const running = t.listings.some((l) => l.running);
    const compare = !this.compare ? null : h('a', { class: 'link compare-replays', href: `viewer.html#/compare/${this.id}/t/${turn}`, title: 'Every sample as a column beside the original, with its differences marked' }, 'Side by side ›');
    const el = h('details', { class: 'replays', open: this.opened.has(turn), dataset: running ? { turn, running: '' } : { turn } },
      h('summary', {}, this.label(turn)),
      h('div', { class: 'replay-scroll' }, h('table', { class: 'replay-table' }, h('thead', {}, head), h('tbody', {}, lead, rows, cost))),
      h('p', { class: 'kept' }, kept, kept ? ' · ' : null, `replays cost ${usd(spent)}, apart from the session’s totals`, compare ? ' · ' : null, compare));
    el.addEventListener('toggle', () => (el.open ? this.opened.add(turn) : this.opened.delete(turn)));
    return el;
  }
}
