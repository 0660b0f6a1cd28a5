// A tab's side of the shared event stream. With SharedWorker, every tab of
// this origin talks to one worker that holds ONE connection (browsers allow
// six per host: one per tab would starve the seventh). Without it, the tab
// holds its own multiplexed connection, and lets go of it while hidden.
//
// hub.watch({ sessions: [{ id, since, deltas }], directory }, handler)
// replaces what this tab follows; `handler` gets { type: 'event' | 'delta' |
// 'state' | 'gap' | 'stream-error' | 'directory', … }.

import { Multiplexer } from './multiplex.js';

class Hub {
  constructor() {
    this.handler = () => {};
    this.wish = { sessions: [], directory: false };
    this.since = () => null;
    // `?no-shared-worker` forces the fallback (for browsers without it, and for trying it).
    const shared = window.SharedWorker && !new URLSearchParams(location.search).has('no-shared-worker');
    if (shared) {
      try {
        this.worker = new SharedWorker('/js/stream-worker.js', { type: 'module', name: 'panel-stream' });
        this.worker.port.onmessage = (e) => this.handler(e.data);
        this.worker.port.start();
        window.addEventListener('pagehide', () => this.worker.port.postMessage({ type: 'bye' }));
        return;
      } catch {
        this.worker = null;
      }
    }
    // Fallback: this tab's own stream, closed while hidden and resumed on return.
    this.local = new Multiplexer();
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) this.local.unfollow(this);
      else this.local.follow(this, this.current(), (m) => this.handler(m));
    });
  }

  /** What this tab follows, from where it is now. */
  current() {
    return { ...this.wish, sessions: this.wish.sessions.map((s) => ({ ...s, since: this.since(s.id) ?? s.since })) };
  }

  watch(wish, handler, since = () => null) {
    this.wish = wish;
    this.handler = handler;
    this.since = since;
    if (this.worker) this.worker.port.postMessage({ type: 'watch', ...wish });
    else if (!document.hidden) this.local.follow(this, wish, (m) => this.handler(m));
  }
}

let hub = null;

/** The tab's hub, made once. */
export function theHub() {
  hub ||= new Hub();
  return hub;
}
