// Starting a counterfactual turn from the chat. A finished turn's "Replay…"
// opens a dialog that asks how — reroll it n times, or have each voice
// answer alone (the control for influence) — and under which settings (the
// session's own, or another model the server offers, another confer depth);
// it posts `/api/sessions/{id}/replay` and then follows the replay's own
// stream until `replay-close`, telling the chat as each sample ends, so the
// turn shows its replays while they play. The session is never touched: a
// replay is recorded beside it, and priced apart.

import { api } from './api.js';
import { h, clear, toast } from './dom.js';

const DEPTHS = [2, 3, 4, 5, 6, 8];

/**
 * The dialog for replaying turn `turn` of session `id` (whose detail is
 * `detail`). Resolves with the started replay's listing, or null.
 */
export async function replayDialog(id, turn, detail) {
  let listing;
  try {
    listing = await api('GET', '/api/providers');
  } catch (e) {
    toast(e.message);
    return null;
  }
  return new Promise((resolve) => {
    const providers = listing.providers;
    const mode = (value, label, hint) => h('label', { class: 'pick-mode', title: hint },
      h('input', { type: 'radio', name: 'mode', value, checked: value === 'reroll' }), ` ${label}`);
    const n = h('input', { type: 'number', name: 'n', min: '1', max: '8', value: '3', 'aria-label': 'Samples' });
    const provider = h('select', { name: 'provider', 'aria-label': 'Provider' },
      providers.map((p) => h('option', { value: p.name, selected: p.name === detail.provider }, p.offline ? `${p.name} (offline)` : p.name)));
    const model = h('select', { name: 'model', 'aria-label': 'Model' });
    const fill = () => {
      const p = providers.find((x) => x.name === provider.value) || providers[0];
      const chosen = p.name === detail.provider ? detail.model : p.default_model;
      clear(model).append(...p.models.map((m) => h('option', { value: m.id, selected: m.id === chosen }, m.id)));
    };
    provider.addEventListener('change', fill);
    fill();
    const depth = h('select', { name: 'depth', 'aria-label': 'Confer depth' },
      h('option', { value: '' }, `as the session (${detail.depth})`),
      DEPTHS.filter((d) => d !== detail.depth).map((d) => h('option', { value: String(d) }, `${d} exchanges`)));
    const start = h('button', { type: 'submit', class: 'primary' }, 'Replay');
    const count = h('label', {}, 'Samples ', n);
    const form = h('form', { method: 'dialog' },
      h('h2', {}, `Replay turn ${turn}`),
      h('p', { class: 'muted small' }, 'Everything before this turn is held exactly as it was. The session is not changed; replays are recorded and priced beside it.'),
      h('fieldset', { class: 'form-row' }, h('legend', {}, 'How'),
        mode('reroll', 'Reroll', 'The turn’s own request, sent again'),
        mode('solo', 'Each voice alone', 'Each character on stage answers the floor alone: no confer, none of the others’ lines')),
      h('div', { class: 'form-row' }, count),
      h('div', { class: 'form-row' },
        providers.length > 1 ? h('label', {}, 'Provider ', provider) : null,
        h('label', {}, 'Model ', model), h('label', {}, 'Confer ', depth)),
      h('div', { class: 'form-row' }, start, h('button', { type: 'button', class: 'link', onclick: () => dialog.close() }, 'Cancel')));
    const dialog = h('dialog', { class: 'character-dialog replay-dialog', 'aria-label': `Replay turn ${turn}` }, form);
    // Alone, each character answers once: there is no count to choose.
    form.addEventListener('change', () => { count.hidden = form.elements.mode.value === 'solo'; });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      start.disabled = true;
      const solo = form.elements.mode.value === 'solo';
      const body = { turn, mode: solo ? 'solo' : 'reroll' };
      if (!solo) body.n = Number(n.value);
      // Only what differs from the session's own settings is sent, so an
      // unchanged replay is recognisably the same request.
      if (provider.value !== detail.provider) body.provider = provider.value;
      if (provider.value !== detail.provider || model.value !== detail.model) body.model = model.value;
      if (depth.value) body.depth = Number(depth.value);
      try {
        const started = await api('POST', `/api/sessions/${encodeURIComponent(id)}/replay`, body);
        resolve(started);
        dialog.close();
      } catch (err) {
        toast(err.message);
        start.disabled = false;
      }
    });
    dialog.addEventListener('close', () => { resolve(null); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * Follows replay `rid` of session `id` from its start: `onSample()` whenever
 * the replay's index has taken in another ended sample — panel writes it
 * before the next sample's `turn-start` and before `replay-close` — so a
 * read of the index then shows it. `done` resolves true once the replay has
 * closed, false if its stream cannot be had (the replay is gone); `close()`
 * stops following.
 */
export function followReplay(id, rid, onSample) {
  const source = new EventSource(`/api/sessions/${encodeURIComponent(id)}/replays/${encodeURIComponent(rid)}/events?since=0`);
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  const stop = (ended) => { source.close(); finish(ended); };
  source.addEventListener('turn-start', () => onSample());
  source.addEventListener('replay-close', () => { onSample(); stop(true); });
  // A dropped stream resumes by itself, from its Last-Event-ID; one that
  // cannot be had at all ends the wait.
  source.addEventListener('error', () => { if (source.readyState === EventSource.CLOSED) stop(false); });
  return { done, close: () => stop(false) };
}
