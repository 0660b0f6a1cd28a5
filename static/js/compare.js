// The compare page, `viewer.html#/compare/A,B[,C…]` (`…/t/N` lands on turn
// N): recorded sessions side by side, one row per aligned floor turn, from
// their files alone (events.jsonl, dynamics.json, the study's study.json).
//
// - The alignment and every mark come from comparison.js, the same rules as
//   `panel compare --json`; this file only draws them. Metrics are
//   dynamics.json's figures, never computed here.
// - Columns are data: a column is a key, a label and a side per turn. A
//   session's replays (its counterfactual turns) stand as extra columns in
//   the row of the turn they play again, one per sample, each marked
//   against its own original; they never change the turn's marks, which
//   stay those of `panel compare`.
// - The first divergence is marked and jumped to (scrolled into view and
//   focused); `[` and `]` (or the buttons) move between differing turns.
// - A changed text shows a word-level diff against the first column, by the
//   vendored jsdiff (`window.Diff`, vendor/diff.min.js).
// - Text from logs is set as text, never parsed as markup.

import { h, clear, usd } from './dom.js';
import { compare, differences, sampleSide } from './comparison.js';
import { fetchJson, fetchEvents, fetchReplays, fetchStudy, people } from './recorded.js';

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** The figures shown from dynamics.json's `session`, in order. */
const METRICS = [
  ['turns', 'turns', (v) => String(v)],
  ['words_per_speak', 'words per speak', (v) => v.toFixed(2)],
  ['pass_rate', 'pass rate', (v) => v.toFixed(2)],
  ['gini', 'Gini of word shares', (v) => v.toFixed(3)],
  ['lead_share', 'top leader’s share', (v) => v.toFixed(2)],
  ['confer_lines_per_turn', 'confer lines / turn', (v) => v.toFixed(2)],
  ['usd', 'USD', (v) => usd(v)],
  ['cache_read_share', 'cache-read share', (v) => `${(v * 100).toFixed(1)}%`],
  ['ttfb_mean_ms', 'first byte (ms)', (v) => v.toFixed(1)],
];

/** What a mark in `differs` says, for the reader. */
function describe(mark, name) {
  if (mark === 'missing') return 'a session has no such turn';
  if (mark === 'floor') return 'floor lines differ';
  if (mark === 'order') return 'order differs';
  if (mark === 'lead') return 'a different lead';
  if (mark.startsWith('answer:')) return `${name(mark.slice(7))} speaks in one, passes or is absent in another`;
  if (mark.startsWith('text:')) return `${name(mark.slice(5))}’s words differ`;
  return mark;
}

/** One session's files, as far as the site has them. */
async function load(id) {
  const events = await fetchEvents(id);
  const [dynamics, manifest, replays] = await Promise.all([
    fetchJson(`logs/${id}/dynamics.json`).catch(() => null),
    fetchJson(`logs/${id}/session.json`).catch(() => null),
    fetchReplays(id),
  ]);
  const open = events[0] && events[0].kind === 'session-open' ? events[0] : null;
  const study = open && open.study ? await fetchStudy(open.study.id) : null;
  return { id, events, open, dynamics, manifest, study, replays };
}

/**
 * The replay columns of session `s` (its letter `letter`, its turns shifted
 * by `offset` as aligned): one per sample, at the aligned turn it replays,
 * each with the session's original side of that turn as its reference.
 */
function replayColumns(s, letter, offset, who) {
  const out = [];
  const rerolls = new Map(); // turn → rerolls numbered so far
  // In the order they were started, as a reader remembers them.
  const started = [...s.replays].sort((a, b) => String(a.listing.started).localeCompare(String(b.listing.started)));
  for (const { listing, events } of started) {
    const turn = listing.turn + offset;
    const settings = `${listing.provider} · ${listing.model} · depth ${listing.depth}`;
    for (const spec of listing.samples) {
      const sample = events.filter((e) => e.sample === spec.sample);
      const played = sampleSide(s.events, listing.turn, sample);
      if (!played) continue;
      // Alone, whoever answers is first by default: there is no lead.
      const side = listing.mode === 'solo' ? { ...played, lead: null } : played;
      const finished = sample.some((e) => e.kind === 'turn-end');
      let label;
      if (listing.mode === 'solo') label = `${letter} · ${who(spec.who)} alone`;
      else {
        const k = (rerolls.get(turn) || 0) + 1;
        rerolls.set(turn, k);
        label = `${letter} · reroll ${k}`;
      }
      if (!listing.same_settings) label += ` (${listing.model}, depth ${listing.depth})`;
      if (!finished) label += ' · unfinished';
      out.push({ key: `${s.id}/${listing.id}/${spec.sample}`, label, title: `Replay ${listing.id}, sample ${spec.sample}: ${settings}`, turn, of: s.id, who: spec.who || null, side: (n) => (n === turn ? side : null) });
    }
  }
  return out;
}

/** A replay column's cell: marked against its own original, not the row. */
function replayCell(column, t, who, colour) {
  const original = t.by_session[column.of] || null;
  const side = column.side(t.turn);
  let differs = original ? differences([original, side]) : [];
  // Alone, only the one character's answer can be compared.
  if (column.who) differs = differs.filter((d) => d === `answer:${column.who}` || d === `text:${column.who}`);
  const el = cell(column, t.turn, { differs }, original, who, colour);
  el.classList.add('replay');
  el.title = column.title;
  return el;
}

/** The settings row values of one session (the condition it ran under). */
function settings(s, who) {
  const o = s.open || { config: {}, participants: [] };
  const condition = s.study && o.study ? s.study.conditions.find((c) => c.name === o.study.condition) : null;
  const prompts = condition && condition.settings.prompts ? condition.settings.prompts.folder : 'default';
  return [
    ['title', 'title', o.config.title ?? '—'],
    ['study', 'study condition', o.study ? `${o.study.condition} · repeat ${o.study.repeat}` : '—'],
    ['cast', 'cast', o.participants.map((p) => who(p.id)).join(', ')],
    ['depth', 'depth', String(o.config.depth ?? '—')],
    ['provider', 'provider', o.config.provider ?? '—'],
    ['model', 'model', o.model ?? '—'],
    ['seed', 'seed', o.config.seed === undefined ? '—' : String(o.config.seed)],
    ['prompts', 'prompts', prompts],
    ['parent', 'branched from', o.parent ? `${o.parent.id} at turn ${o.parent.turn}` : '—'],
  ];
}

function headerTable(columns, loaded, who) {
  const rows = [];
  const row = (key, label, values, group) => {
    const differs = values.some((v) => v !== values[0]);
    rows.push(h('tr', { class: differs ? 'differs' : null, dataset: { row: key, group } },
      h('th', { scope: 'row' }, label, differs ? h('span', { class: 'diff-mark', title: 'differs between the sessions' }, ' ≠') : null),
      values.map((v) => h('td', {}, v))));
  };
  const all = loaded.map((s) => settings(s, who));
  all[0].forEach(([key, label], i) => row(key, label, all.map((r) => r[i][2]), 'setting'));
  for (const [key, label, show] of METRICS) {
    row(key, label, loaded.map((s) => {
      const v = s.dynamics ? s.dynamics.session[key] : undefined;
      return v === undefined || v === null ? '—' : show(v);
    }), 'metric');
  }
  return h('div', { class: 'cmp-scroll' }, h('table', { class: 'cmp-header' },
    h('thead', {}, h('tr', {}, h('th', {}, ''), columns.map((c) => h('th', { scope: 'col' },
      h('a', { href: `#/s/${c.key}` }, `${c.label} · ${c.title}`))))),
    h('tbody', {}, rows)));
}

/** A speak's text: plain, or as a word diff against `reference`. */
function words(text, reference) {
  if (reference === null || reference === text || !window.Diff) return h('div', { class: 'text' }, text);
  const parts = window.Diff.diffWords(reference, text).map((p) => {
    if (p.added) return h('ins', { class: 'diff-ins' }, p.value);
    if (p.removed) return h('del', { class: 'diff-del' }, p.value);
    return p.value;
  });
  return h('div', { class: 'text word-diff', title: 'Changes from the first session’s words' }, parts);
}

function cell(column, turn, t, ref, who, colour) {
  const side = column.side(turn);
  if (!side) return h('section', { class: 'cmp-cell missing', dataset: { column: column.key } }, h('p', { class: 'cmp-label' }, column.label), h('p', { class: 'muted' }, 'no such turn'));
  const marked = (what) => t.differs.includes(what);
  const acts = side.acts.map((a) => {
    const answer = marked(`answer:${a.speaker}`);
    const person = { name: who(a.speaker), colour: colour(a.speaker) };
    if (a.kind === 'pass') return h('p', { class: `pass${answer ? ' mark' : ''}`, dataset: { speaker: a.speaker } }, `${person.name} passes`);
    const lead = side.lead === a.speaker;
    const changed = marked(`text:${a.speaker}`);
    const refAct = changed && ref && ref !== side ? ref.acts.find((x) => x.speaker === a.speaker) : null;
    return h('article', { class: `msg${answer || changed || (lead && marked('lead')) ? ' mark' : ''}`, '--c': person.colour, dataset: { speaker: a.speaker } },
      h('header', {}, person.name, lead ? h('span', { class: `lead-badge${marked('lead') ? ' mark' : ''}` }, 'lead') : null),
      words(a.text ?? '', refAct ? refAct.text ?? '' : null));
  });
  const confer = side.confer.length ? h('details', { class: 'cmp-confer' },
    h('summary', {}, `confer · ${side.confer.length} line${side.confer.length === 1 ? '' : 's'}`),
    side.confer.map((l) => h('p', { class: 'line', '--c': colour(l.speaker) }, h('b', {}, who(l.speaker)), ' ', l.text))) : null;
  return h('section', { class: 'cmp-cell', dataset: { column: column.key }, 'aria-label': `${column.label}, turn ${turn}` },
    h('p', { class: 'cmp-label' }, `${column.label}`, side.own_turn !== turn ? h('span', { class: 'muted' }, ` · its turn ${side.own_turn}`) : null),
    h('div', { class: `floor${marked('floor') ? ' mark' : ''}` },
      side.to ? h('span', { class: 'to' }, `to ${who(side.to)}`) : null,
      h('span', { class: 'floor-text' }, side.floor)),
    h('p', { class: `cmp-order small${marked('order') ? ' mark' : ''}` }, 'order: ', side.order.map(who).join(' → ') || '—'),
    acts, confer,
    h('p', { class: 'cmp-cost small muted' }, `turn cost ${usd(side.usd)}`));
}

function turnRow(c, t, columns, extra, base, who, colour) {
  const first = c.first_divergence === t.turn;
  const ref = columns.map((col) => col.side(t.turn)).find(Boolean) || null;
  const cls = `cmp-turn${t.differs.length ? ' differs' : ''}${first ? ' first-divergence' : ''}`;
  return h('li', { class: cls, id: `cmp-turn-${t.turn}`, tabindex: '-1', dataset: { turn: t.turn, differs: t.differs.join(' ') } },
    h('h2', { class: 'cmp-turn-head' },
      h('a', { href: `${base}/t/${t.turn}`, class: 'turn-link' }, `Turn ${t.turn}`),
      first ? h('span', { class: 'first-mark' }, 'first divergence') : null,
      t.differs.length ? h('span', { class: 'cmp-marks' }, t.differs.map((d) => h('span', { class: 'chip small diff-chip', dataset: { mark: d } }, describe(d, who))))
        : h('span', { class: 'muted small' }, 'all agree')),
    h('div', { class: 'cmp-row', '--n': String(columns.length + extra.length) },
      columns.map((col) => cell(col, t.turn, t, ref, who, colour)),
      extra.map((col) => replayCell(col, t, who, colour))));
}

function folded(c, loaded, who) {
  if (!c.folded) return null;
  const i = loaded.findIndex((s) => s.id === c.folded.of);
  const own = c.own[i];
  const shared = [...own.entries()].filter(([n]) => n <= c.folded.through).sort((a, b) => a[0] - b[0]);
  return h('details', { class: 'cmp-folded' },
    h('summary', {}, `Turns 1–${c.folded.through} are shared (as recorded in ${c.folded.of})`),
    h('ol', { class: 'cmp-shared' }, shared.map(([n, side]) => h('li', { value: n },
      h('p', { class: 'floor-text' }, side.floor),
      side.acts.map((a) => h('p', { class: 'small' }, h('b', {}, who(a.speaker)), a.kind === 'pass' ? ' passes' : `: ${a.text ?? ''}`))))));
}

/** The compare page of `ids` into `view`; answers a controller to close. */
export async function showCompare(view, ids, landOn) {
  clear(view).append(h('p', { class: 'muted' }, 'Loading…'));
  let loaded;
  try {
    loaded = await Promise.all(ids.map(load));
  } catch (e) {
    clear(view).append(h('div', { class: 'sessions-page' }, h('p', { class: 'error-text' }, e.message), h('a', { href: '#/' }, '← All sessions')));
    return { close() {} };
  }
  const c = compare(loaded.map((s) => s.events));
  const names = new Map();
  for (const s of loaded) for (const [k, v] of people(s.events)) if (!names.has(k)) names.set(k, v);
  const who = (id) => (names.get(id) || { name: id }).name;
  const colour = (id) => (names.get(id) || {}).colour || '#888888';
  const byTurn = new Map(c.turns.map((t) => [t.turn, t]));
  const columns = loaded.map((s, i) => ({
    key: s.id,
    label: LETTERS[i % 26],
    title: s.open ? s.open.config.title : s.id,
    side: (turn) => (byTurn.get(turn) || { by_session: {} }).by_session[s.id],
  }));
  const replays = loaded.flatMap((s, i) => replayColumns(s, LETTERS[i % 26], c.sessions[i].offset, who));
  const extra = (turn) => replays.filter((col) => col.turn === turn);
  const base = `#/compare/${ids.join(',')}`;
  const diverging = c.turns.filter((t) => t.differs.length).map((t) => t.turn);
  const summary = c.first_divergence === null
    ? h('p', { class: 'cmp-summary', role: 'status' }, 'No divergence: every turn agrees.')
    : h('p', { class: 'cmp-summary', role: 'status' }, 'First divergence: ',
      h('a', { class: 'first-link', href: `${base}/t/${c.first_divergence}` }, `turn ${c.first_divergence}`),
      ` — ${byTurn.get(c.first_divergence).differs.map((d) => describe(d, who)).join('; ')}. ${diverging.length} of ${c.turns.length} turns differ.`);
  const replayed = [...new Set(replays.map((col) => col.turn))].sort((a, b) => a - b);
  const replayNote = replayed.length ? h('p', { class: 'cmp-replay-note small muted' },
    `${replays.length} replay sample${replays.length === 1 ? '' : 's'} stand beside ${replayed.length === 1 ? 'turn' : 'turns'} `,
    replayed.flatMap((n, i) => [i ? ', ' : '', h('a', { href: `${base}/t/${n}` }, String(n))]),
    ', each marked against its own original.') : null;
  const list = h('ol', { class: 'cmp-turns', '--n': String(columns.length) }, c.turns.map((t) => turnRow(c, t, columns, extra(t.turn), base, who, colour)));
  const current = () => Number((document.activeElement && document.activeElement.closest && document.activeElement.closest('.cmp-turn')?.dataset.turn) || 0);
  const go = (turn) => { if (turn) location.hash = `${base}/t/${turn}`; };
  const next = () => go(diverging.find((n) => n > current()));
  const previous = () => go([...diverging].reverse().find((n) => n < current()));
  const controls = h('div', { class: 'cmp-controls' },
    h('button', { type: 'button', class: 'control', 'aria-keyshortcuts': '[', title: 'Previous differing turn ([)', onclick: previous }, '‹ previous difference'),
    h('button', { type: 'button', class: 'control', 'aria-keyshortcuts': ']', title: 'Next differing turn (])', onclick: next }, 'next difference ›'));
  const many = `${ids.length} session${ids.length === 1 ? '' : 's'}`;
  document.getElementById('session-title').textContent = replays.length ? `Comparing ${many} and their replays` : `Comparing ${many}`;
  document.title = `compare ${many} · panel`;
  clear(view).append(h('div', { class: 'compare-page' },
    h('a', { href: '#/' }, '← All sessions'),
    h('h1', {}, `Comparing ${columns.map((col) => col.label).join(', ')}${replays.length ? ' with replays' : ''}`),
    summary, replayNote, headerTable(columns, loaded, who), folded(c, loaded, who), controls, list));
  const jump = (turn) => {
    const el = document.getElementById(`cmp-turn-${turn}`);
    if (!el) return;
    el.scrollIntoView({ block: 'start' });
    el.focus({ preventScroll: true });
  };
  jump(landOn ?? c.first_divergence);
  const keys = (e) => {
    if (e.target.closest && e.target.closest('input, textarea, select')) return;
    if (e.key === ']') { e.preventDefault(); next(); }
    if (e.key === '[') { e.preventDefault(); previous(); }
  };
  document.addEventListener('keydown', keys);
  return { ids: ids.join(','), jump, close() { document.removeEventListener('keydown', keys); } };
}
