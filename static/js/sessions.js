// The sessions page: every session with its cast, turns and cost; a form to
// open a new one from the roster; fork.

import { api } from './api.js';
import { h, clear, toast, usd, when } from './dom.js';

function chips(onStage) {
  return h('span', { class: 'chips' }, onStage.map((p) => h('span', { class: 'chip small', '--c': p.colour }, h('span', { class: 'dot' }), p.name)));
}

async function fork(id) {
  try {
    const info = await api('POST', `/api/sessions/${id}/fork`);
    location.hash = `#/s/${info.id}`;
  } catch (e) {
    toast(e.message);
  }
}

function sessionRow(s) {
  const status = s.closed ? 'closed' : s.actor === 'stopped' ? 'actor stopped' : 'open';
  return h('li', { class: 'session-row' },
    h('a', { class: 'session-link', href: `#/s/${s.id}` },
      h('span', { class: 'session-name' }, s.title),
      h('span', { class: `status ${s.closed ? 'closed' : ''}` }, status)),
    h('div', { class: 'session-meta' },
      chips(s.on_stage),
      h('span', {}, `${s.turns} turn${s.turns === 1 ? '' : 's'}`),
      h('span', { title: 'total cost' }, usd(s.totals.usd)),
      h('time', { datetime: s.updated }, when(s.updated)),
      s.closed ? h('a', { class: 'link', href: `viewer.html#/s/${s.id}`, title: 'Step through the recorded session' }, 'Replay') : null,
      h('button', { class: 'link', type: 'button', onclick: () => fork(s.id), title: 'A fresh session with this cast' }, 'Fork')));
}

function newSessionForm(roster) {
  const picked = new Set();
  const form = h('form', { class: 'new-session', 'aria-label': 'New session' });
  const cards = roster.characters.map((c) => {
    const box = h('input', { type: 'checkbox', name: 'cast', value: c.id });
    box.addEventListener('change', () => { box.checked ? picked.add(c.id) : picked.delete(c.id); });
    return h('label', { class: 'pick', '--c': c.colour }, box, h('span', { class: 'dot' }),
      h('span', { class: 'pick-text' }, h('b', {}, c.name), h('span', { class: 'tagline' }, c.tagline)));
  });
  const title = h('input', { type: 'text', name: 'title', placeholder: 'What is this session about?', maxlength: '200' });
  const depth = h('select', { name: 'depth', 'aria-label': 'Confer depth' },
    [2, 3, 4, 5, 6, 8].map((d) => h('option', { value: String(d), selected: d === 4 }, `${d} exchanges`)));
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Open session');
  form.append(
    h('h2', {}, 'New session'),
    h('fieldset', { class: 'cast-picker' }, h('legend', {}, 'Cast — pick one or more'), cards),
    h('div', { class: 'form-row' },
      h('label', {}, 'Title ', title),
      h('label', {}, 'Confer ', depth),
      submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (picked.size === 0) { toast('Pick at least one character.'); return; }
    submit.disabled = true;
    try {
      const cast = roster.characters.map((c) => c.id).filter((id) => picked.has(id));
      const info = await api('POST', '/api/sessions', { cast, title: title.value.trim() || undefined, depth: Number(depth.value) });
      location.hash = `#/s/${info.id}`;
    } catch (e) {
      toast(e.message);
      submit.disabled = false;
    }
  });
  return form;
}

export async function showSessions(view) {
  clear(view).append(h('p', { class: 'muted' }, 'Loading…'));
  let sessions, roster;
  try {
    [sessions, roster] = await Promise.all([api('GET', '/api/sessions'), api('GET', '/api/roster')]);
  } catch (e) {
    clear(view).append(h('p', { class: 'error-text' }, e.message));
    return;
  }
  const list = sessions.length
    ? h('ul', { class: 'session-list' }, sessions.map(sessionRow))
    : h('p', { class: 'muted' }, 'No sessions yet. Open one below.');
  clear(view).append(h('div', { class: 'sessions-page' },
    h('section', {}, h('h1', {}, 'Sessions'), list),
    h('section', {}, newSessionForm(roster))));
  view.focus();
}
