// The Dynamics charts: six Vega-Lite views of one session's figures, as
// computed by panel's one metrics module (`dynamics.json` beside a recorded
// session, or GET /api/sessions/{id}/dynamics live). Nothing is computed
// here beyond reshaping those figures into chart rows, so a chart can never
// disagree with the tables or the API. Each chart sits in an element with a
// `data-chart` attribute and offers its data as CSV and its Vega-Lite spec.
//
// Needs the vendored vega, vega-lite and vega-embed globals.

import { h, clear } from './dom.js';

function colours(d) {
  const known = d.characters.filter((c) => c.colour);
  return { domain: known.map((c) => c.character), range: known.map((c) => c.colour) };
}

function csv(rows) {
  if (!rows.length) return '';
  const cols = Object.keys(rows[0]);
  const cell = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

/** Chart rows and specs from the figures. */
export function charts(d) {
  const scale = colours(d);
  const character = { field: 'character', type: 'nominal', scale };
  const turn = { field: 'turn', type: 'ordinal', title: 'turn' };
  const share = d.turns.flatMap((t) => d.characters.map((c) => ({
    turn: t.turn, character: c.character, words: t.words[c.character] || 0, passed: t.passed.includes(c.character),
  })));
  const leads = d.turns.filter((t) => t.lead).map((t) => ({ turn: t.turn, character: t.lead }));
  const passes = share.map((r) => ({ turn: r.turn, character: r.character, passed: r.passed ? 1 : 0 }));
  const pickups = d.pickups.map((p) => ({ by: p.by, of: p.of, count: p.count }));
  const cost = d.turns.flatMap((t) => [
    ['input', t.input_tokens], ['cache_write', t.cache_write_tokens], ['cache_read', t.cache_read_tokens], ['output', t.output_tokens],
  ].map(([kind, tokens]) => ({ turn: t.turn, kind, tokens, usd: t.usd, keep_warm_pings: t.keep_warm_pings })));
  const context = d.turns.map((t) => ({ turn: t.turn, context_tokens: t.context_tokens }));
  const spec = (title, values, rest) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title, width: 560, height: 160, data: { values }, ...rest,
  });
  return [
    ['share', share, spec('Words per character per turn (× passed)', share, { layer: [
      { mark: 'bar', encoding: { x: turn, y: { field: 'words', type: 'quantitative', stack: 'zero' }, color: character } },
      { transform: [{ filter: 'datum.passed' }], mark: { type: 'point', shape: 'cross' }, encoding: { x: turn, y: { datum: 0 }, color: character } },
    ] })],
    ['leads', leads, spec('Who led each turn', leads, { mark: 'rect', height: 40, encoding: { x: turn, color: character } })],
    ['passes', passes, spec('Passes, character × turn', passes, { mark: 'rect', encoding: { x: turn, y: { field: 'character', type: 'nominal' }, color: { field: 'passed', type: 'quantitative', scale: { domain: [0, 1] } } } })],
    ['pickups', pickups, spec('Who picks up whom', pickups, { mark: 'rect', encoding: { x: { field: 'of', type: 'nominal', title: 'line of' }, y: { field: 'by', type: 'nominal', title: 'picked up by' }, color: { field: 'count', type: 'quantitative' } } })],
    ['cost', cost, spec(`Tokens per turn by kind (cache-read share ${(d.session.cache_read_share * 100).toFixed(1)}%, ${d.session.keep_warm_pings} keep-warm pings)`, cost, { mark: 'bar', encoding: { x: turn, y: { field: 'tokens', type: 'quantitative' }, color: { field: 'kind', type: 'nominal' }, tooltip: [{ field: 'usd' }, { field: 'keep_warm_pings' }] } })],
    ['context', context, spec('Context tokens per turn', context, { mark: { type: 'line', point: true }, encoding: { x: turn, y: { field: 'context_tokens', type: 'quantitative' } } })],
  ];
}

function download(name, text, type) {
  const a = h('a', { class: 'link', download: name, href: URL.createObjectURL(new Blob([text], { type })) }, name);
  return a;
}

/** Renders the six charts of `d` into `root`. */
export async function renderDynamics(root, d) {
  clear(root);
  const jobs = charts(d).map(([name, rows, spec]) => {
    const plot = h('div', { class: 'chart-plot' });
    root.append(h('section', { class: 'chart', 'data-chart': name },
      plot,
      h('div', { class: 'chart-downloads' }, 'download: ', download(`${name}.csv`, csv(rows), 'text/csv'), ' · ',
        download(`${name}.vl.json`, JSON.stringify(spec, null, 2), 'application/json'))));
    return window.vegaEmbed(plot, spec, { actions: false, renderer: 'svg' });
  });
  await Promise.all(jobs);
}

/**
 * The live app's Dynamics drawer: the open session's charts from the API,
 * redrawn when a turn ends (the chat view announces `panel:turn-end`).
 */
export class Drawer {
  constructor(root, toggle) {
    this.root = root;
    this.toggle = toggle;
    this.id = null;
    toggle.addEventListener('click', () => this.setOpen(root.hidden));
    document.addEventListener('panel:turn-end', (e) => {
      if (e.detail.session === this.id && !this.root.hidden) this.refresh();
    });
  }

  /** Offers the drawer for session `id` (none: hides it). */
  show(id) {
    this.id = id;
    this.toggle.hidden = !id;
    if (!id) this.setOpen(false);
    else if (!this.root.hidden) this.refresh();
  }

  setOpen(open) {
    this.root.hidden = !open;
    this.toggle.setAttribute('aria-expanded', String(open));
    if (open) this.refresh();
  }

  async refresh() {
    const id = this.id;
    try {
      const res = await fetch(`/api/sessions/${id}/dynamics`, { headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(`dynamics: ${res.status}`);
      const d = await res.json();
      if (id !== this.id) return;
      await renderDynamics(this.root, d);
      this.root.dataset.turns = String(d.session.turns);
    } catch (e) {
      clear(this.root).append(h('p', { class: 'error-text' }, e.message));
    }
  }
}
