// The prompt cache in the strip: a live countdown while the cached prefix is
// warm, what the next turn will pay for it once cold, and the keep-warm
// setting. The server reports how many seconds of warmth were left when it
// answered, so the countdown runs on this tab's monotonic clock and needs no
// agreement between clocks. The state is fetched again whenever an event
// may have changed it (a turn's cost, a keep-warm ping, a settings change).

import { h, usd } from './dom.js';

const CHOICES = [
  ['auto', 'Keep warm: auto', 'Ping the provider before the cache goes cold while someone watches and it is likely to pay'],
  ['always', 'Keep warm: always', 'Ping before the cache goes cold until the floor has been silent for the cap'],
  ['off', 'Keep warm: off', 'Never ping; a pause longer than the TTL rewrites the prompt'],
];

function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function tokens(n) {
  return n >= 1000 ? `${Math.round(n / 1000)}k` : String(n);
}

export class CacheMeter {
  /** `onKeepWarm(choice)`: sends the setting; none means the setting is not this browser's to change. */
  constructor({ onKeepWarm }) {
    this.mayChange = Boolean(onKeepWarm);
    this.text = h('span', { class: 'cache-text', role: 'timer', 'aria-live': 'off' });
    this.select = h('select', { class: 'keep-warm', 'aria-label': 'Keep the prompt cache warm' },
      CHOICES.map(([value, label, title]) => h('option', { value, title }, label)));
    this.select.addEventListener('change', async () => {
      const want = this.select.value;
      this.select.disabled = true;
      try {
        await onKeepWarm(want);
      } catch {
        this.select.value = this.state?.keep_warm || 'off';
      } finally {
        this.select.disabled = false;
      }
    });
    this.el = h('span', { class: 'cache-meter', dataset: { state: 'empty' } }, this.text, this.select);
    this.state = null;
    this.timer = setInterval(() => this.render(), 250);
  }

  stop() {
    clearInterval(this.timer);
  }

  /** Takes `GET /api/sessions/{id}`: its `cache` and `cache_ttl`. */
  update(detail) {
    const cache = detail && detail.cache;
    if (!cache) return;
    this.state = cache;
    this.el.hidden = detail.closed;
    this.deadline = cache.remaining_s === null || cache.remaining_s === undefined
      ? null : performance.now() + cache.remaining_s * 1000;
    this.select.value = cache.keep_warm;
    // A provider whose cache does not expire has nothing to keep warm.
    this.select.hidden = !this.mayChange || cache.ttl_s === null;
    const ttl = document.getElementById('session-ttl');
    if (ttl) {
      ttl.hidden = false;
      ttl.textContent = cache.ttl_s === null ? 'cache kept until evicted' : `cache TTL ${detail.cache_ttl}`;
      ttl.title = 'How long the provider keeps the cached prompt after its last use';
    }
    this.render();
  }

  render() {
    const c = this.state;
    if (!c) return;
    let state;
    let text;
    if (c.prefix_tokens === 0) {
      state = 'empty';
      text = 'cache empty';
    } else if (c.ttl_s === null) {
      state = 'warm';
      text = 'cache warm';
    } else {
      const left = this.deadline === null ? 0 : (this.deadline - performance.now()) / 1000;
      if (left > 0) {
        state = 'warm';
        text = `cache warm · ${clock(left)}`;
      } else {
        state = 'cold';
        const cost = c.rewrite_usd === null || c.rewrite_usd === undefined ? '' : `, ~${usd(c.rewrite_usd)}`;
        text = `cache cold · next turn rewrites ~${tokens(c.prefix_tokens)} tokens${cost}`;
      }
    }
    this.el.dataset.state = state;
    if (this.text.textContent !== text) this.text.textContent = text;
  }
}
