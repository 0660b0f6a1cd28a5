// The app shell: a hash router between the sessions page and a live chat,
// and the model badge in the header.

import { api } from './api.js';
import { showSessions } from './sessions.js';
import { ChatView } from './chat.js';

const view = document.getElementById('view');
let current = null;

async function route() {
  if (current && current.close) current.close();
  current = null;
  document.getElementById('session-title').textContent = '';
  document.getElementById('connection').hidden = true;
  document.getElementById('session-ttl').hidden = true;
  document.getElementById('session-model').hidden = true;
  const match = location.hash.match(/^#\/s\/([a-z0-9-]+)/);
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
