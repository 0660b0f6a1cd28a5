// The app shell: a hash router between the sessions page and a live chat
// (`#/s/<id>`, or `#/s/<id>/t/<n>` to land on turn n),
// the model badge in the header, and the Dynamics drawer of the open session.

import { api } from './api.js';
import { showSessions } from './sessions.js';
import { ChatView } from './chat.js';
import { Drawer } from './dynamics.js';

const view = document.getElementById('view');
let current = null;
const drawer = new Drawer(document.getElementById('dynamics-drawer'), document.getElementById('dynamics-toggle'));

async function route() {
  const match = location.hash.match(/^#\/s\/([a-z0-9-]+)(?:\/t\/(\d+))?/);
  const at = match && match[2] ? Number(match[2]) : null;
  // A link to a turn of the session already open only scrolls to it.
  if (match && current instanceof ChatView && current.id === match[1]) {
    if (at) current.jumpTo(at);
    return;
  }
  if (current && current.close) current.close();
  current = null;
  document.getElementById('session-title').textContent = '';
  document.getElementById('connection').hidden = true;
  document.getElementById('session-ttl').hidden = true;
  document.getElementById('session-model').hidden = true;
  drawer.show(match ? match[1] : null);
  if (match) {
    current = new ChatView(view, match[1], at);
    await current.open();
  } else {
    document.title = 'panel';
    await showSessions(view);
  }
}

async function badge() {
  const el = document.getElementById('engine-badge');
  try {
    const health = await api('GET', '/healthz');
    const p = health.provider;
    el.textContent = p.offline ? 'Rehearsal engine · offline' : `${p.model}`;
    el.title = p.offline
      ? 'No API key is set: the offline rehearsal engine voices the panel and costs are simulated.'
      : `Model ${p.model} via ${p.name}`;
    el.classList.toggle('rehearsal', p.offline);
    el.hidden = false;
  } catch {
    el.hidden = true;
  }
}

window.addEventListener('hashchange', route);
badge();
route();
