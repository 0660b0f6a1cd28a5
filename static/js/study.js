// Studies in the browser: a study's sessions grouped under it on the
// sessions pages (the viewer's list and the live app's), with "Compare" for
// any of them, and a study's own page, `viewer.html#/study/<id>`, showing
// its study.json and the per-condition report.json side by side.
//
// - Everything comes from the files `panel study` wrote (logs/studies/<id>/)
//   and the sessions' study tags in index.json (or the API's list): the
//   report's means and standard deviations are shown, never recomputed.
// - A site may carry only some of a study's sessions (an export of a few):
//   only the sessions it has are linked; the others are named, not linked.
// - Links are built by the page that shows the group (`links`), so the same
//   group works inside the viewer and from the live app.

import { h, clear } from './dom.js';
import { fetchJson, fetchStudy } from './recorded.js';

/** The report's figures, as `report.json` keys them, with their labels. */
const METRICS = [
  ['turns', 'turns'],
  ['words_per_speak', 'words per speak'],
  ['pass_rate', 'pass rate'],
  ['gini', 'Gini of word shares'],
  ['lead_share', 'top leader’s share'],
  ['confer_lines_per_turn', 'confer lines / turn'],
  ['usd', 'USD'],
  ['cache_read_share', 'cache-read share'],
  ['ttfb_mean_ms', 'first byte (ms)'],
];

/** A condition's settings in a few words. */
export function settingsText(settings) {
  const parts = [];
  for (const [key, value] of Object.entries(settings || {})) {
    if (key === 'prompts') parts.push(`prompts ${value.folder}`);
    else if (Array.isArray(value)) parts.push(`${key} ${value.join(', ')}`);
    else parts.push(`${key} ${value}`);
  }
  return parts.join(' · ') || 'the script as written';
}

/** Checkboxes over sessions and a "Compare selected" button that follows them. */
export function picker(links) {
  const picked = [];
  const button = h('button', { type: 'button', class: 'primary compare-selected', disabled: true }, 'Compare selected');
  const count = h('span', { class: 'muted small', role: 'status' }, 'Pick two or more sessions to compare them turn by turn.');
  const update = () => {
    button.disabled = picked.length < 2;
    button.textContent = picked.length >= 2 ? `Compare ${picked.length} selected` : 'Compare selected';
    count.textContent = picked.length ? `${picked.length} picked` : 'Pick two or more sessions to compare them turn by turn.';
  };
  button.addEventListener('click', () => { if (picked.length >= 2) location.href = links.compare(picked); });
  const box = (id, label) => {
    // Checked again when a live list is redrawn with the same session.
    const input = h('input', { type: 'checkbox', class: 'pick-session', 'aria-label': label, dataset: { id }, checked: picked.includes(id) });
    input.addEventListener('change', () => {
      const at = picked.indexOf(id);
      if (input.checked && at < 0) picked.push(id);
      if (!input.checked && at >= 0) picked.splice(at, 1);
      update();
    });
    return input;
  };
  return { box, bar: h('div', { class: 'compare-bar' }, button, count) };
}

/**
 * The group of one study on a sessions page: conditions × repeats, each
 * session with a checkbox, each repeat compared across conditions in one
 * click, each condition's repeat against the first condition's.
 */
export function studyGroup(id, record, listed, links, pick) {
  // The cells come from the sessions' own tags (current even while a study
  // plays); study.json gives the title, the settings and the order.
  const names = [...new Set([...(record ? record.conditions.map((c) => c.name) : []), ...listed.map((s) => s.study.condition)])];
  const conditions = names.map((name) => ({
    name,
    settings: record ? (record.conditions.find((c) => c.name === name) || {}).settings : null,
    sessions: listed.filter((s) => s.study.condition === name).map((s) => ({ id: s.id, repeat: s.study.repeat })),
  }));
  const repeats = [...new Set(conditions.flatMap((c) => c.sessions.map((p) => p.repeat)))].sort((a, b) => a - b);
  const at = (c, k) => c.sessions.find((p) => p.repeat === k);
  const head = h('tr', {}, h('th', { scope: 'col' }, 'condition'), repeats.map((k) => {
    const ids = conditions.map((c) => at(c, k)).filter(Boolean).map((p) => p.id);
    return h('th', { scope: 'col' }, `repeat ${k} `, ids.length >= 2
      ? h('a', { class: 'link compare-repeat', href: links.compare(ids), title: `Every condition's repeat ${k}, turn by turn` }, 'compare') : null);
  }));
  const base = conditions[0];
  const rows = conditions.map((c) => h('tr', { dataset: { condition: c.name } },
    h('th', { scope: 'row' }, c.name, c.settings ? h('span', { class: 'muted small settings' }, settingsText(c.settings)) : null),
    repeats.map((k) => {
      const p = at(c, k);
      if (!p) return h('td', { class: 'muted small' }, '—');
      const other = c !== base ? at(base, k) : null;
      return h('td', {}, h('span', { class: 'study-cell' },
        pick.box(p.id, `${c.name}, repeat ${k}`),
        h('a', { href: links.session(p.id), class: 'study-session' }, p.id)),
        other ? h('a', { class: 'link vs-link', href: links.compare([other.id, p.id]), title: `This session beside ${base.name}'s repeat ${k}` }, `vs ${base.name}`) : null);
    })));
  const title = record ? record.title : id;
  return h('section', { class: 'study-group', dataset: { study: id } },
    h('h2', {}, h('a', { href: links.study(id) }, title),
      h('span', { class: 'muted small' }, ` study · ${conditions.length} condition${conditions.length === 1 ? '' : 's'} × ${repeats.length} repeat${repeats.length === 1 ? '' : 's'}`)),
    h('div', { class: 'cmp-scroll' }, h('table', { class: 'study-grid' }, h('thead', {}, head), h('tbody', {}, rows))));
}

/** The groups of every study among `sessions` (each with its `study` tag). */
export async function studyGroups(sessions, links, pick) {
  const byStudy = new Map();
  for (const s of sessions.filter((x) => x.study)) {
    if (!byStudy.has(s.study.id)) byStudy.set(s.study.id, []);
    byStudy.get(s.study.id).push(s);
  }
  const records = await Promise.all([...byStudy.keys()].map(fetchStudy));
  return [...byStudy].map(([id, listed], i) => studyGroup(id, records[i], listed, links, pick));
}

function cell(summary, key) {
  if (!summary || summary.mean === null || summary.mean === undefined) return '–';
  const fixed = key === 'usd' ? 5 : 3;
  return summary.sd === null || summary.sd === undefined ? summary.mean.toFixed(fixed) : `${summary.mean.toFixed(fixed)} ± ${summary.sd.toFixed(fixed)}`;
}

/** A study's own page: what it is, its script, its conditions side by side. */
export async function showStudy(view, id) {
  clear(view).append(h('p', { class: 'muted' }, 'Loading…'));
  const base = `logs/studies/${encodeURIComponent(id)}`;
  let record;
  try {
    record = await fetchJson(`${base}/study.json`);
  } catch (e) {
    clear(view).append(h('div', { class: 'sessions-page' }, h('p', { class: 'error-text' }, `No study ${id} here (${e.message}).`), h('a', { href: '#/' }, '← All sessions')));
    return;
  }
  const [report, index] = await Promise.all([fetchJson(`${base}/report.json`).catch(() => null), fetchJson('logs/index.json').catch(() => ({ sessions: [] }))]);
  const has = new Set(index.sessions.map((s) => s.id));
  const link = (sid, text) => (has.has(sid) ? h('a', { href: `#/s/${sid}`, class: 'study-session' }, text) : h('span', { class: 'muted', title: 'not on this site' }, text));
  const conditions = record.conditions;
  const repeats = [...new Set(conditions.flatMap((c) => c.sessions.map((p) => p.repeat)))].sort((a, b) => a - b);
  const reported = (name) => (report ? report.conditions.find((c) => c.name === name) : null);
  const headRow = h('tr', {}, h('th', {}, ''), conditions.map((c) => h('th', { scope: 'col' }, c.name)));
  const rows = [
    h('tr', { dataset: { row: 'settings' } }, h('th', { scope: 'row' }, 'settings'), conditions.map((c) => h('td', {}, settingsText(c.settings)))),
    h('tr', { dataset: { row: 'n' } }, h('th', { scope: 'row' }, 'sessions (n)'), conditions.map((c) => h('td', {}, String(reported(c.name)?.n ?? c.sessions.length)))),
    ...METRICS.map(([key, label]) => h('tr', { dataset: { row: key } }, h('th', { scope: 'row' }, label),
      conditions.map((c) => h('td', { class: 'num' }, cell(reported(c.name)?.metrics[key], key))))),
    h('tr', { dataset: { row: 'sessions' } }, h('th', { scope: 'row' }, 'its sessions'), conditions.map((c) => h('td', {},
      h('ul', { class: 'plain' }, [...c.sessions].sort((x, y) => x.repeat - y.repeat).map((p) => h('li', {}, `#${p.repeat} `, link(p.id, p.id))))))),
  ];
  const compareRepeats = repeats.map((k) => {
    const ids = conditions.map((c) => c.sessions.find((p) => p.repeat === k)).filter((p) => p && has.has(p.id)).map((p) => p.id);
    return ids.length >= 2 ? h('a', { class: 'link compare-repeat', href: `#/compare/${ids.join(',')}` }, `compare repeat ${k} across conditions`) : null;
  }).filter(Boolean);
  const script = record.script;
  document.getElementById('session-title').textContent = record.title;
  document.title = `${record.title} · study · panel`;
  clear(view).append(h('div', { class: 'sessions-page study-page' },
    h('a', { href: '#/' }, '← All sessions'),
    h('section', {},
      h('h1', {}, record.title),
      h('p', { class: 'muted' }, `study ${record.id} · created ${record.created} · seed ${record.seed} · ${conditions.length} conditions × ${record.repeat} repeats · ${record.order.length} sessions in play order`),
      h('h2', {}, 'Conditions side by side'),
      report ? null : h('p', { class: 'muted no-report' }, 'No report yet: the study has not finished (resume it with panel study FILE --resume ID).'),
      h('div', { class: 'cmp-scroll' }, h('table', { class: 'study-report' }, h('thead', {}, headRow), h('tbody', {}, rows))),
      report ? h('p', { class: 'muted small' }, 'mean ± sample standard deviation over each condition’s repeats; one repeat shows its value alone.') : null,
      compareRepeats.length ? h('p', { class: 'compare-repeats' }, compareRepeats.flatMap((a, i) => (i ? [' · ', a] : [a]))) : null),
    h('section', {},
      h('h2', {}, 'The script'),
      h('p', { class: 'muted' }, `cast ${script.cast.join(', ')}${script.depth ? ` · depth ${script.depth}` : ''}`),
      h('ol', { class: 'study-script' }, script.turn.map((t) => h('li', {}, t.to ? `@${t.to} ` : '', t.say))))));
}
