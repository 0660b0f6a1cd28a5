// The sessions page: every session with its cast, turns and cost; a form to
// open a new one from the roster; a new session with a session's cast. A
// study's sessions are grouped under their study (study.js); any sessions
// can be picked and compared in the viewer (viewer.html#/compare/…).

import { api } from './api.js';
import { theHub } from './hub.js';
import { face } from './library.js';
import { h, clear, toast, usd, when } from './dom.js';
import { picker, studyGroups } from './study.js';

// The compare and study pages are the viewer's; sessions open live here.
const links = {
  compare: (ids) => `viewer.html#/compare/${ids.join(',')}`,
  session: (id) => `#/s/${id}`,
  study: (id) => `viewer.html#/study/${id}`,
};

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

function sessionRow(s, pick) {
  const status = s.closed ? 'closed' : s.actor === 'stopped' ? 'actor stopped' : 'open';
  return h('li', { class: 'session-row' },
    h('div', { class: 'session-link-row' }, pick.box(s.id, `Pick ${s.title} to compare`),
      h('a', { class: 'session-link', href: `#/s/${s.id}` },
        h('span', { class: 'session-name' }, s.title),
        h('span', { class: `status ${s.closed ? 'closed' : ''}` }, status))),
    h('div', { class: 'session-meta' },
      chips(s.on_stage),
      h('span', {}, `${s.turns} turn${s.turns === 1 ? '' : 's'}`),
      h('span', { title: 'total cost' }, usd(s.totals.usd)),
      h('time', { datetime: s.updated }, when(s.updated)),
      s.closed ? h('a', { class: 'link', href: `viewer.html#/s/${s.id}`, title: 'Step through the recorded session' }, 'Replay') : null,
      s.parent ? h('a', { class: 'link parent-link', href: `#/s/${s.parent.id}`, title: `Continued from ${s.parent.id} at turn ${s.parent.turn}` }, 'continued from…') : null,
      h('button', { class: 'link', type: 'button', onclick: () => fork(s.id), title: 'An empty conversation with the cast on stage now' }, 'New session with this cast')));
}

// Provider, model, cache TTL and keep-warm, from what the server offers.
function engineFields(listing) {
  const providers = listing.providers;
  const provider = h('select', { name: 'provider', 'aria-label': 'Provider' },
    providers.map((p) => h('option', { value: p.name, selected: p.name === listing.default }, p.offline ? `${p.name} (offline)` : p.name)));
  const model = h('select', { name: 'model', 'aria-label': 'Model' });
  const ttl = h('select', { name: 'cache_ttl', 'aria-label': 'Prompt cache lifetime', title: 'How long the provider keeps the cached prompt after its last use; 1h writes cost more but survive long pauses' });
  const keepWarm = h('select', { name: 'keep_warm', 'aria-label': 'Keep the cache warm', title: 'Ping the provider before the cache goes cold during a pause' });
  const ttlLabel = h('label', {}, 'Cache ', ttl);
  const warmLabel = h('label', {}, 'Keep warm ', keepWarm);
  const fill = () => {
    const p = providers.find((x) => x.name === provider.value) || providers[0];
    clear(model).append(...p.models.map((m) => h('option', { value: m.id, selected: m.id === p.default_model },
      m.window ? `${m.id} · ${Math.round(m.window / 1000)}k window` : m.id)));
    clear(ttl).append(...p.cache_ttls.map((t) => h('option', { value: t }, t)));
    clear(keepWarm).append(...p.keep_warm.map((k) => h('option', { value: k, selected: k === 'auto' }, k)));
    // A cache without a TTL (llama.cpp, vLLM) has nothing to choose.
    ttlLabel.hidden = !p.cache_expires;
    warmLabel.hidden = !p.cache_expires;
  };
  provider.addEventListener('change', fill);
  fill();
  const fields = h('div', { class: 'form-row' },
    providers.length > 1 ? h('label', {}, 'Provider ', provider) : null,
    h('label', {}, 'Model ', model), ttlLabel, warmLabel);
  const values = () => {
    const p = providers.find((x) => x.name === provider.value) || providers[0];
    return {
      provider: p.name,
      model: model.value || undefined,
      cache_ttl: p.cache_expires ? ttl.value : undefined,
      keep_warm: p.cache_expires ? keepWarm.value : undefined,
    };
  };
  return { fields, values };
}

function newSessionForm(roster, listing) {
  const picked = new Set();
  const form = h('form', { class: 'new-session', 'aria-label': 'New session' });
  const cards = roster.characters.map((c) => {
    const box = h('input', { type: 'checkbox', name: 'cast', value: c.id });
    box.addEventListener('change', () => { box.checked ? picked.add(c.id) : picked.delete(c.id); });
    return h('label', { class: 'pick', '--c': c.colour }, box, face(c),
      h('span', { class: 'pick-text' }, h('b', {}, c.name), h('span', { class: 'tagline' }, c.tagline)));
  });
  const title = h('input', { type: 'text', name: 'title', placeholder: 'What is this session about?', maxlength: '200' });
  const depth = h('select', { name: 'depth', 'aria-label': 'Confer depth' },
    [2, 3, 4, 5, 6, 8].map((d) => h('option', { value: String(d), selected: d === 4 }, `${d} exchanges`)));
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Open session');
  const engine = engineFields(listing);
  form.append(
    h('h2', {}, 'New session'),
    h('fieldset', { class: 'cast-picker' }, h('legend', {}, 'Cast — pick one or more'), cards),
    h('div', { class: 'form-row' },
      h('label', {}, 'Title ', title),
      h('label', {}, 'Confer ', depth)),
    engine.fields,
    h('div', { class: 'form-row' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (picked.size === 0) { toast('Pick at least one character.'); return; }
    submit.disabled = true;
    try {
      const cast = roster.characters.map((c) => c.id).filter((id) => picked.has(id));
      const info = await api('POST', '/api/sessions', { cast, title: title.value.trim() || undefined, depth: Number(depth.value), ...engine.values() });
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
  let sessions, roster, providers;
  try {
    [sessions, roster, providers] = await Promise.all([api('GET', '/api/sessions'), api('GET', '/api/roster'), api('GET', '/api/providers')]);
  } catch (e) {
    clear(view).append(h('p', { class: 'error-text' }, e.message));
    return;
  }
  const pick = picker(links);
  const listing = h('div', { class: 'session-listing' }, await list(sessions, pick));
  clear(view).append(h('div', { class: 'sessions-page' },
    h('section', {}, h('h1', {}, 'Sessions'), pick.bar, listing),
    h('section', {}, newSessionForm(roster, providers))));
  view.focus();
  // Live: new sessions, turns and costs, from the shared stream's directory notes.
  let fetching = false;
  let stale = false;
  const refresh = async () => {
    if (fetching) { stale = true; return; }
    fetching = true;
    do {
      stale = false;
      try {
        const now = await api('GET', '/api/sessions');
        const fresh = await list(now, pick);
        if (listing.isConnected) clear(listing).append(fresh);
      } catch { /* the next note tries again */ }
    } while (stale && listing.isConnected);
    fetching = false;
  };
  // Each time the stream goes live, the list is fetched again: a session
  // made between the first fetch and the stream opening (or during an
  // outage) sent its note to no one.
  theHub().watch({ sessions: [], directory: true }, (m) => {
    if (m.type === 'directory' || (m.type === 'state' && m.state === 'live')) refresh();
  });
}

async function list(sessions, pick) {
  if (!sessions.length) return h('p', { class: 'muted' }, 'No sessions yet. Open one below.');
  const groups = await studyGroups(sessions, links, pick);
  const rest = sessions.filter((s) => !s.study);
  return h('div', {}, groups, rest.length ? h('ul', { class: 'session-list' }, rest.map((s) => sessionRow(s, pick))) : null);
}
