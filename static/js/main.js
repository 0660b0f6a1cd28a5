// The app shell: a hash router between the sessions page and a live chat,
// the model badge in the header, and the Dynamics drawer of the open session.

import { api } from './api.js';
import { showSessions } from './sessions.js';
import { ChatView } from './chat.js';
import { Drawer } from './dynamics.js';

const view = document.getElementById('view');
let current = null;
const drawer = new Drawer(document.getElementById('dynamics-drawer'), document.getElementById('dynamics-toggle'));

async function route() {
  if (current && current.close) current.close();
  current = null;
  document.getElementById('session-title').textContent = '';
  document.getElementById('connection').hidden = true;
  document.getElementById('session-ttl').hidden = true;
  document.getElementById('session-model').hidden = true;
  const match = location.hash.match(/^#\/s\/([a-z0-9-]+)/);
  drawer.show(match ? match[1] : null);
  if (match) {
    current = new ChatView(view, match[1]);
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
