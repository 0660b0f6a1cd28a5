// The live chat: everything shown comes from the session's history (one
// request) and then its events on the shared stream (hub.js: one connection
// per browser, resuming where it was after a drop; the timeline ignores what
// it has already applied); everything sent goes over the WebSocket, and is
// answered with an ack or an error. Only a window of turns is in the DOM
// (window.js); the search box finds text in the whole history (search.js).

import { api, socketUrl } from './api.js';
import { theHub } from './hub.js';
import { h, clear, toast, usd } from './dom.js';
import { Timeline } from './timeline.js';
import { Replays } from './replays.js';
import { followReplay, replayDialog } from './replay-form.js';
import { Finder } from './search.js';
import { Composer } from './composer.js';
import { Room } from './room.js';
import { CacheMeter } from './cache.js';
import { ContextMeter, continueSession, takeCarriedLine } from './context.js';
import { acceptDrops, face, importCard, libraryButton } from './library.js';

// Events after which the session's cache and context state is fetched again.
const DETAIL_KINDS = new Set(['cost', 'keep-warm', 'settings', 'turn-end', 'turn-aborted', 'session-close']);

/**
 * An invitee reaches its one session and nothing else: the header's ways to
 * the others (the sessions page, the recorded ones) lead back to it or go.
 */
function keepToSession(id) {
  document.querySelector('.topbar .brand')?.setAttribute('href', `#/s/${id}`);
  for (const el of document.querySelectorAll('.topbar .owner-only')) el.hidden = true;
}

export class ChatView {
  /** `at`: the turn a link asks for (`#/s/<id>/t/<n>`), or null for the newest. */
  constructor(view, id, at = null) {
    this.view = view;
    this.id = id;
    this.at = at;
    this.pending = [];        // cast changes waiting for the boundary: { add | retire }
    this.queued = [];         // floor messages sent but not yet taken: { text, el }
    this.requests = new Map(); // WebSocket request id → { resolve, reject }
    this.nextRequest = 1;
    this.closing = false;
    this.following = new Set(); // replays being followed, closed with the view
  }

  async open() {
    let detail, roster;
    // The history is asked for at once, beside the session's detail.
    const history = this.fetchHistory();
    history.catch(() => {});
    try {
      [detail, roster] = await Promise.all([api('GET', `/api/sessions/${this.id}`), api('GET', '/api/roster')]);
    } catch (e) {
      clear(this.view).append(h('div', { class: 'sessions-page' },
        h('p', { class: 'error-text' }, e.message), h('a', { href: '#/' }, '← All sessions')));
      return;
    }
    this.roster = roster.characters;
    if (detail.live) this.pending = detail.live.pending_changes.slice();
    // Let in by an invite: it may follow (a watcher) or also speak (a
    // speaker, perhaps under a fixed seat), never change the cast, branch
    // or replay.
    this.invited = detail.you || null;
    if (this.invited) keepToSession(this.id);
    this.build();
    this.timeline = new Timeline({
      chat: this.chatEl,
      drawer: this.drawerList,
      onChange: (ev) => this.changed(ev),
      onRetry: (text) => this.composer.fill(text),
      onBranch: this.invited ? null : (n) => continueSession(this.id, { atTurn: n }),
      onReplay: this.invited ? null : (n) => this.replay(n),
      sessionHref: (id) => `#/s/${id}`,
      turnHref: (n) => `#/s/${this.id}/t/${n}`,
      onConfer: () => this.toggleDrawer(true),
    });
    this.finder = new Finder({
      corpus: () => this.timeline.corpus,
      reveal: (rec) => this.timeline.reveal(rec),
      jump: (n) => this.jumpTo(n),
      turns: () => this.timeline.currentTurn(),
    });
    this.finderSlot.append(this.finder.el);
    document.title = `${detail.title} · panel`;
    document.getElementById('session-title').textContent = detail.title;
    const model = document.getElementById('session-model');
    model.textContent = detail.model;
    model.title = `This session's model, via ${detail.provider}; fixed when it opened`;
    model.hidden = false;
    this.showDetail(detail);
    if (this.invited?.seat) this.room.fix(this.invited.seat);
    if (this.invited?.role === 'watcher') this.composer.setWatching();
    const carried = takeCarriedLine(this.id);
    if (carried) this.composer.fill(carried);
    this.connectEvents(history);
    this.replays = new Replays('/logs', this.id, { compare: !this.invited });
    this.reloadReplays();
    // Replays may be started elsewhere (`panel replay`, another tab): read
    // them again when the page is looked at again.
    this.onLook = () => { if (document.visibilityState === 'visible') this.reloadReplays(); };
    document.addEventListener('visibilitychange', this.onLook);
    window.addEventListener('focus', this.onLook);
    if (this.invited?.role !== 'watcher') this.connectSocket();
    this.renderStrip();
  }

  showDetail(detail) {
    this.detail = detail;
    this.cache.update(detail);
    this.context.update(detail);
    // A grammar holds the model to the format (a llama.cpp or vLLM server).
    const constraint = detail.live?.config?.constraint;
    this.formatBadge.hidden = !constraint || detail.closed;
    this.formatBadge.title = {
      gbnf: 'Each turn is sent with a grammar (llama.cpp GBNF): the model cannot leave the panel format',
      vllm: 'Each turn is sent with a grammar (vLLM structured outputs): the model cannot leave the panel format',
      'vllm-legacy': 'Each turn is sent with a grammar (vLLM guided_grammar): the model cannot leave the panel format',
    }[constraint] || '';
  }

  /** Fetches the cache and context state again (one request at a time, the last one wins). */
  async refreshDetail() {
    if (this.detailFetch) { this.detailStale = true; return; }
    this.detailFetch = true;
    try {
      do {
        this.detailStale = false;
        this.showDetail(await api('GET', `/api/sessions/${this.id}`));
      } while (this.detailStale && !this.closing);
    } catch {
      // The next event tries again.
    } finally {
      this.detailFetch = false;
    }
  }

  /**
   * Reads the session's replays again: one read at a time, and a call made
   * during one is answered by a read after it (so the last one wins).
   */
  reloadReplays() {
    if (this.replayLoop) { this.replaysStale = true; return this.replayLoop; }
    this.replayLoop = (async () => {
      try {
        do {
          this.replaysStale = false;
          this.timeline.showReplays(await this.replays.load());
        } while (this.replaysStale && !this.closing);
      } finally {
        this.replayLoop = null;
      }
    })();
    return this.replayLoop;
  }

  /** Asks how to replay turn `n`, starts it, and shows its samples as they end. */
  async replay(n) {
    const started = await replayDialog(this.id, n, this.detail);
    if (!started || this.closing) return;
    this.replays.opened.add(n);
    this.reloadReplays();
    const follow = followReplay(this.id, started.id, () => this.reloadReplays());
    this.following.add(follow);
    const ended = await follow.done;
    this.following.delete(follow);
    if (this.closing) return;
    await this.reloadReplays();
    toast(ended ? `The replay of turn ${n} has ended.` : `The replay of turn ${n} can no longer be followed; it shows when this page is looked at again.`);
  }

  close() {
    this.closing = true;
    for (const follow of this.following) follow.close();
    if (this.onLook) {
      document.removeEventListener('visibilitychange', this.onLook);
      window.removeEventListener('focus', this.onLook);
    }
    this.cache?.stop();
    theHub().watch({ sessions: [], directory: false }, () => {});
    this.socket?.close();
  }

  build() {
    this.chatEl = h('ol', { class: 'chat', 'aria-label': 'Conversation', 'aria-live': 'polite' });
    this.stick = true;
    // Following the newest line: only while the reader is at the very end.
    this.chatEl.addEventListener('scroll', () => {
      const el = this.chatEl;
      this.stick = el.scrollHeight - el.scrollTop - el.clientHeight < 80 && (!this.timeline || this.timeline.atEnd());
    });
    this.drawerList = h('div', { class: 'drawer-list' });
    this.drawer = h('aside', { class: 'drawer', id: 'confer-drawer', 'aria-label': 'Confer', hidden: true },
      h('div', { class: 'drawer-head' }, h('h2', {}, 'Confer'),
        h('button', { type: 'button', class: 'icon', 'aria-label': 'Close the confer drawer', onclick: () => this.toggleDrawer(false) }, '✕')),
      h('p', { class: 'muted small' }, 'The panel\'s private back-and-forth before each answer.'),
      this.drawerList);
    this.drawerButton = h('button', { type: 'button', class: 'drawer-toggle', 'aria-controls': 'confer-drawer', 'aria-expanded': 'false', onclick: () => this.openDrawerAtEnd() }, 'Confer');
    this.strip = h('div', { class: 'strip', 'aria-label': 'On stage' });
    this.finderSlot = h('span', { class: 'finder-slot' });
    this.totalsEl = h('span', { class: 'totals', title: 'Session cost and share of input read from the prompt cache' });
    this.formatBadge = h('span', { class: 'badge format-badge', hidden: true }, 'format enforced by the server');
    this.context = new ContextMeter({ id: this.id, pendingLine: () => this.refusedLine || null, mayContinue: !this.invited });
    this.cache = new CacheMeter({
      // Settings are the owner's: an invitee sees the cache, not the choice.
      onKeepWarm: this.invited ? null : (keepWarm) => this.send({ type: 'settings', keep_warm: keepWarm }).catch((e) => { toast(e.message); throw e; }),
    });
    this.composer = new Composer({
      onSend: (text) => this.say(text),
      names: () => this.timeline.onStage.map((id) => this.timeline.person(id).name),
      onSeat: () => this.room.name('The name shown beside your lines:'),
    });
    this.room = new Room({ composer: this.composer, onSeat: () => this.reconnectAs() });
    const main = h('section', { class: 'chat-pane' }, this.chatEl, this.context.banner, this.composer.el);
    this.viewEl = h('div', { class: 'chat-view' },
      h('div', { class: 'substrip' }, this.strip, this.room.el, h('span', { class: 'spacer' }), this.finderSlot, this.formatBadge, this.context.el, this.cache.el, this.totalsEl, this.drawerButton),
      h('div', { class: 'chat-body' }, main, this.drawer));
    clear(this.view).append(this.viewEl);
    // A card file dropped anywhere on the chat joins the library.
    acceptDrops(this.viewEl, async (file) => {
      try {
        const c = await importCard(file);
        toast(`Imported ${c.name}: add it to the panel from ⊕.`);
        await this.reloadRoster();
      } catch (e) {
        toast(`${file.name}: ${e.message}`);
      }
    });
    this.view.addEventListener('click', (event) => {
      const link = event.target.closest('.confer-link, .turn-link');
      if (!link) return;
      event.preventDefault();
      const turn = link.dataset.turn;
      if (link.classList.contains('confer-link')) this.timeline.jumpConfer(Number(turn));
      else this.jumpTo(Number(turn));
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && !this.drawer.hidden) this.toggleDrawer(false);
    });
  }

  toggleDrawer(open = this.drawer.hidden) {
    this.drawer.hidden = !open;
    this.drawerButton.setAttribute('aria-expanded', String(open));
    this.drawerButton.classList.toggle('active', open);
    // A hidden drawer has no size: its window looks at its edges once shown.
    if (open) this.timeline?.drawer.schedule();
  }

  /** The drawer's button: it opens on the newest confer. */
  openDrawerAtEnd() {
    this.toggleDrawer();
    if (!this.drawer.hidden && this.timeline?.drawer.atEnd()) this.drawer.scrollTop = this.drawer.scrollHeight;
  }

  connection(state) {
    const el = document.getElementById('connection');
    el.hidden = false;
    el.dataset.state = state;
    el.textContent = { live: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', offline: 'offline' }[state];
  }

  /** Shows turn `n` (a link to it, or the jump box), leaving the newest line. */
  jumpTo(n) {
    this.at = n;
    if (!this.timeline.started) return;
    this.stick = false;
    this.timeline.jump(n);
  }

  // History comes from the session's log in one request; live events from
  // the shared stream (one connection for all of this browser's tabs),
  // from where the history ends. Events arriving while the history loads
  // wait, so they are applied in order; the timeline ignores any it has.
  // The whole history is applied before anything is drawn, then drawn once.
  async connectEvents(history) {
    await this.loadHistory(history);
    theHub().watch(
      { sessions: [{ id: this.id, since: this.timeline.lastSeq, deltas: true }], directory: false },
      (m) => this.fromHub(m),
      () => this.timeline.lastSeq,
    );
  }

  /** The session's events after `since`, in one request. */
  fetchHistory(since = 0) {
    return api('GET', `/api/sessions/${this.id}/history${since ? `?since=${since}` : ''}`);
  }

  /** Applies the history (`pending`: a request already made, else one after what is applied). */
  async loadHistory(pending = null) {
    this.held = this.held || [];
    this.loading = true;
    try {
      const history = await (pending || this.fetchHistory(this.timeline.lastSeq));
      for (const ev of history.events) this.timeline.apply(ev);
    } catch (e) {
      toast(e.message);
    } finally {
      this.loading = false;
      for (const ev of this.held.splice(0)) this.timeline.apply(ev);
      if (!this.timeline.started) {
        this.timeline.start(this.at);
        this.stick = !this.at;
      }
      this.refreshUi();
      this.refreshDetail();
    }
  }

  fromHub(m) {
    if (this.closing) return;
    switch (m.type) {
      case 'state': this.connection(m.state); break;
      case 'event':
        if (this.loading) this.held.push(m.data);
        else this.timeline.apply(m.data);
        break;
      case 'delta':
        if (!this.loading) { this.timeline.delta(m.data); this.follow(); }
        break;
      case 'gap': this.loadHistory(); break;
      case 'presence': this.room.showPresence(m.data); break;
      case 'stream-error': if (m.data.code !== 'session-closed') toast(m.data.message); break;
      default: break;
    }
  }

  connectSocket() {
    const socket = new WebSocket(socketUrl(this.id, this.room.seat));
    this.socket = socket;
    socket.onopen = () => { document.body.dataset.socket = 'open'; };
    socket.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      const waiting = this.requests.get(msg.id);
      if (!waiting) return;
      this.requests.delete(msg.id);
      if (msg.type === 'ack') waiting.resolve(msg.result);
      else waiting.reject(Object.assign(new Error(msg.message), { code: msg.code }));
    };
    socket.onclose = () => {
      document.body.dataset.socket = 'closed';
      for (const w of this.requests.values()) w.reject(new Error('The connection closed; try again.'));
      this.requests.clear();
      if (!this.closing) setTimeout(() => this.connectSocket(), 1000);
    };
  }

  /** Waits (briefly) for the WebSocket, so a message typed as the page loads is not lost. */
  connected() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) return Promise.resolve();
    // A watcher never opens one: there is nothing it may send.
    if (!this.socket) return Promise.reject(new Error('This link lets you follow the session, not speak in it.'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('Not connected to the server; try again in a moment.')), 5000);
      this.socket.addEventListener('open', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  async send(command) {
    await this.connected();
    return new Promise((resolve, reject) => {
      const id = this.nextRequest++;
      this.requests.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ ...command, id }));
    });
  }

  /** Reopens the socket under the seat just chosen: it speaks for it in the room's presence. */
  reconnectAs() {
    const old = this.socket;
    if (old) {
      old.onclose = null;
      old.close();
      for (const w of this.requests.values()) w.reject(new Error('The connection closed; try again.'));
      this.requests.clear();
    }
    this.connectSocket();
  }

  async say(text) {
    await this.room.beforeSpeaking(this.timeline.seats);
    // What one says is read at the end of the conversation.
    if (!this.timeline.atEnd()) this.timeline.start();
    this.stick = true;
    const el = h('li', { class: 'queued' }, h('span', { class: 'floor-text' }, text), h('span', { class: 'badge' }, 'sending…'));
    this.chatEl.append(el);
    const entry = { text: text.trim(), el };
    this.queued.push(entry);
    const sent = () => (this.room.seat ? { type: 'say', text, seat: this.room.seat } : { type: 'say', text });
    try {
      let ack;
      try {
        ack = await this.send(sent());
      } catch (e) {
        // A session older than seats would drop the name: speak without it here.
        if (e.code !== 'seats-unsupported' || !this.room.unseat()) throw e;
        toast('This session predates seats: your lines here go without your name.');
        ack = await this.send(sent());
      }
      el.querySelector('.badge').textContent = ack.queued > 0 ? `queued · turn ${ack.turn}` : 'sent';
      return true;
    } catch (e) {
      el.remove();
      this.queued = this.queued.filter((q) => q !== entry);
      if (e.code === 'context-full') {
        // Kept in the composer, and carried along if the floor continues fresh.
        this.refusedLine = text;
        this.context.markFull();
      }
      toast(e.message);
      return false;
    }
  }

  async change(command) {
    try {
      const ack = await this.send(command);
      if (ack.pending) this.pending.push(command.type === 'add' ? { add: command.character } : { retire: command.character });
      this.renderStrip();
    } catch (e) {
      toast(e.message);
    }
  }

  changed(ev) {
    if (ev.kind === 'human-speak') {
      // The floor line has been taken: its queued placeholder goes.
      const i = this.queued.findIndex((q) => ev.text.endsWith(q.text) || q.text.endsWith(ev.text));
      if (i >= 0) {
        this.queued[i].el.remove();
        this.queued.splice(i, 1);
      }
    }
    if (ev.kind === 'join') this.pending = this.pending.filter((p) => p.add !== ev.character);
    if (ev.kind === 'leave') this.pending = this.pending.filter((p) => p.retire !== ev.character);
    if (ev.kind === 'session-open') {
      document.getElementById('session-title').textContent = ev.config.title;
    }
    if (ev.kind === 'error' && ev.code === 'context-full') this.context.markFull();
    if (ev.kind === 'session-close') {
      this.timeline.note(() => h('a', { href: `viewer.html#/s/${this.id}` }, 'Replay this session in the viewer'));
    }
    // While the history loads, nothing is drawn: it is drawn once at the end.
    if (this.loading) return;
    if (DETAIL_KINDS.has(ev.kind)) this.refreshDetail();
    // The Dynamics drawer redraws when a turn ends.
    if (ev.kind === 'turn-end') document.dispatchEvent(new CustomEvent('panel:turn-end', { detail: { session: this.id } }));
    this.refreshUi();
  }

  /** The strip, totals and composer as the timeline stands, and the newest line in view. */
  refreshUi() {
    // Keep queued placeholders after the newest turn.
    for (const q of this.queued) this.chatEl.append(q.el);
    this.composer.setBusy(this.timeline.inFlight);
    this.composer.setClosed(this.timeline.closed);
    this.renderStrip();
    this.renderTotals();
    this.follow();
  }

  /** Keeps the newest line in view, unless the reader has scrolled up to read. */
  follow() {
    if (this.stick && this.timeline.atEnd()) this.chatEl.scrollTop = this.chatEl.scrollHeight;
  }

  renderTotals() {
    const t = this.timeline.totals;
    const input = t.input + t.cache_write + t.cache_read;
    const share = input ? Math.round((100 * t.cache_read) / input) : 0;
    this.totalsEl.textContent = `${usd(t.usd)}${t.priced ? '' : '+'} · ${share}% cache reads`;
    this.totalsEl.title = t.pings
      ? `Session cost, including ${t.pings} keep-warm ping${t.pings === 1 ? '' : 's'} (${usd(t.pings_usd)}), and share of input read from the prompt cache`
      : 'Session cost and share of input read from the prompt cache';
  }

  renderStrip() {
    const tl = this.timeline;
    // Rebuild only when the cast changed, so an open library menu (or a
    // focused button) survives the stream of events during a turn.
    const key = JSON.stringify([tl.onStage, this.pending, tl.closed]);
    if (key === this.stripKey) return;
    this.stripKey = key;
    const leaving = new Set(this.pending.filter((p) => p.retire).map((p) => p.retire));
    const chips = tl.onStage.map((id) => {
      const who = tl.person(id);
      const pending = leaving.has(id);
      return h('span', { class: `chip${pending ? ' pending' : ''}`, '--c': who.colour, dataset: { id } },
        face(who), who.name,
        pending ? h('span', { class: 'note' }, 'leaves at the next turn') : null,
        tl.closed || pending || this.invited ? null : h('button', { type: 'button', class: 'icon', 'aria-label': `Retire ${who.name}`, title: `Retire ${who.name}`, onclick: () => this.change({ type: 'retire', character: id }) }, '✕'));
    });
    const joining = this.pending.filter((p) => p.add).map((p) => {
      const c = this.roster.find((r) => r.id === p.add) || { name: p.add, colour: '#888888' };
      return h('span', { class: 'chip pending', '--c': c.colour, dataset: { id: p.add } }, face(c), c.name, h('span', { class: 'note' }, 'joins at the next turn'));
    });
    const taken = new Set([...tl.onStage, ...this.pending.filter((p) => p.add).map((p) => p.add)]);
    const add = tl.closed || this.invited ? null : libraryButton({
      roster: () => this.roster,
      taken,
      onAdd: (id) => this.change({ type: 'add', character: id }),
      onChanged: () => this.reloadRoster(),
    }).el;
    clear(this.strip).append(...chips, ...joining, ...(add ? [add] : []));
  }

  /** The library again, after an import or an edit. */
  async reloadRoster() {
    try {
      this.roster = (await api('GET', '/api/roster')).characters;
      this.stripKey = null;
      this.renderStrip();
    } catch (e) {
      toast(e.message);
    }
  }
}
