// The character library behind the strip's ⊕: add a character to the
// session, import a Character Card (file picker, or drop a file anywhere on
// the page), make a new character or edit one, download one as a card.
// Card text is untrusted: everything here is set as text, never as HTML.

import { api } from './api.js';
import { h, clear, toast } from './dom.js';

// Where avatars come from: panel's API, or (in a static export, which has
// no API) the files `panel export` put beside the viewer. Either way by the
// file name the session recorded: an avatar replaced since is still the one
// this session showed.
let avatarSource = (c) => `/api/roster/${encodeURIComponent(c.id)}/avatar?file=${encodeURIComponent(c.avatar)}`;

/** Avatars are read from the export's `avatars/` folder from now on. */
export function avatarsFromExport() {
  avatarSource = (c) => `avatars/${encodeURIComponent(c.avatar)}`;
}

/** The avatar of a character (roster entry or session participant), if it has one. */
export function avatarUrl(c) {
  if (!c || !c.avatar) return null;
  return avatarSource(c);
}

/** A small round avatar, or the character's colour dot when there is none. */
export function face(c, colour) {
  const url = avatarUrl(c);
  if (!url) return h('span', { class: 'dot', '--c': colour || (c && c.colour) });
  const img = h('img', { class: 'face', src: url, alt: '', loading: 'lazy' });
  // A session may outlive its character's avatar: fall back to the dot.
  img.addEventListener('error', () => img.replaceWith(h('span', { class: 'dot', '--c': colour || c.colour })));
  return img;
}

/** Sends a card file to the server; returns the new character. */
export async function importCard(file) {
  const kind = file.type || (file.name.endsWith('.json') ? 'application/json' : file.name.match(/\.(charx|zip)$/i) ? 'application/zip' : 'image/png');
  const path = `/api/roster/import?filename=${encodeURIComponent(file.name)}`;
  const res = await fetch(path, { method: 'POST', headers: { 'Content-Type': kind, Accept: 'application/json' }, body: file });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(data?.error?.message || `${res.status} ${res.statusText}`);
  return data;
}

/** Calls `onFile` for a card file dropped anywhere on `target`. */
export function acceptDrops(target, onFile) {
  target.addEventListener('dragover', (e) => {
    if ([...(e.dataTransfer?.types || [])].includes('Files')) { e.preventDefault(); target.classList.add('dropping'); }
  });
  target.addEventListener('dragleave', () => target.classList.remove('dropping'));
  target.addEventListener('drop', (e) => {
    target.classList.remove('dropping');
    const file = e.dataTransfer?.files?.[0];
    if (!file) return;
    e.preventDefault();
    onFile(file);
  });
}

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(new Error('The image could not be read.'));
    r.readAsDataURL(file);
  });
}

/** The dialog to make a character, or to edit `existing`. Resolves with the saved one, or null. */
export function characterDialog(existing = null) {
  return new Promise((resolve) => {
    const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '48', value: existing?.name || '' });
    const tagline = h('input', { type: 'text', name: 'tagline', required: true, maxlength: '160', value: existing?.tagline || '' });
    const colour = h('input', { type: 'color', name: 'colour', value: existing?.colour || '#3a7bd5' });
    const materials = h('textarea', { name: 'materials', rows: '12', required: true }, existing?.materials || '# Name\n\n## Persona\n\n## Voice\n\n## Cares about\n- \n\n## Sample lines\n- ');
    const avatar = h('input', { type: 'file', name: 'avatar', accept: 'image/png,image/jpeg,image/webp,image/gif' });
    const save = h('button', { type: 'submit', class: 'primary' }, existing ? 'Save' : 'Create');
    const dialog = h('dialog', { class: 'character-dialog', 'aria-label': existing ? `Edit ${existing.name}` : 'New character' },
      h('form', { method: 'dialog' },
        h('h2', {}, existing ? `Edit ${existing.name}` : 'New character'),
        existing ? h('p', { class: 'muted small' }, 'Edits apply to new sessions and to later joins; sessions already running keep the copy they started with.') : null,
        h('label', {}, 'Name ', name), h('label', {}, 'Tagline ', tagline), h('label', {}, 'Colour ', colour),
        h('label', { class: 'wide' }, 'Materials (markdown: persona, voice, concerns, sample lines) ', materials),
        h('label', {}, 'Avatar ', avatar),
        h('div', { class: 'form-row' }, save, h('button', { type: 'button', class: 'link', onclick: () => { dialog.close(); } }, 'Cancel'))));
    dialog.querySelector('form').addEventListener('submit', async (e) => {
      e.preventDefault();
      save.disabled = true;
      try {
        const body = { name: name.value, tagline: tagline.value, colour: colour.value, materials: materials.value };
        if (avatar.files[0]) body.avatar = await readAsDataUrl(avatar.files[0]);
        const saved = existing
          ? await api('PUT', `/api/roster/${encodeURIComponent(existing.id)}`, body)
          : await api('POST', '/api/roster', body);
        resolve(saved);
        dialog.close();
      } catch (err) {
        toast(err.message);
        save.disabled = false;
      }
    });
    dialog.addEventListener('close', () => { resolve(null); dialog.remove(); });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * The ⊕ button and its menu. `roster()` gives the library now; `taken` the
 * ids on stage or joining; `onAdd(id)` adds one to the session; `onChanged()`
 * reloads the library after an import or an edit.
 */
export function libraryButton({ roster, taken, onAdd, onChanged }) {
  // Visually hidden rather than `hidden`, so assistive tech and automation can reach it.
  const picker = h('input', { type: 'file', class: 'card-picker visually-hidden', 'aria-label': 'Import a card file', accept: '.png,.json,.charx,image/png,application/json' });
  const menu = h('div', { class: 'library', role: 'menu', hidden: true });
  const doImport = async (file) => {
    try {
      const c = await importCard(file);
      toast(`Imported ${c.name}${c.library?.source?.kept?.length ? ` (kept, not used: ${c.library.source.kept.join('; ')})` : ''}.`);
      await onChanged();
    } catch (e) {
      toast(`${file.name}: ${e.message}`);
    }
  };
  picker.addEventListener('change', () => { if (picker.files[0]) doImport(picker.files[0]); picker.value = ''; });
  const render = () => {
    const items = roster().filter((c) => !taken.has(c.id)).map((c) => {
      const notes = c.library?.creator_notes;
      const kept = c.library?.source?.kept || [];
      const cardName = c.library?.source?.card_name;
      return h('div', { class: 'library-row', dataset: { id: c.id } },
        h('button', { type: 'button', role: 'menuitem', class: 'library-item', '--c': c.colour, dataset: { id: c.id },
          onclick: () => { menu.hidden = true; onAdd(c.id); } },
        face(c), h('b', {}, c.name), h('span', { class: 'tagline' }, c.tagline)),
        h('details', { class: 'library-more' }, h('summary', { 'aria-label': `More about ${c.name}` }, '⋯'),
          cardName ? h('p', { class: 'small' }, 'The card names it: ', h('q', {}, cardName)) : null,
          notes ? h('p', { class: 'small creator-notes' }, h('b', {}, 'Creator notes: '), notes) : null,
          kept.length ? h('p', { class: 'small muted' }, `Kept from the card, not used: ${kept.join('; ')}.`) : null,
          h('div', { class: 'form-row small' },
            h('button', { type: 'button', class: 'link edit-character', onclick: async () => { menu.hidden = true; if (await characterDialog(c)) await onChanged(); } }, 'Edit'),
            h('a', { class: 'link', href: `/api/roster/${c.id}/card.png`, download: `${c.id}.png` }, 'Card (PNG)'),
            h('a', { class: 'link', href: `/api/roster/${c.id}/card.json`, download: `${c.id}.json` }, 'Card (JSON)'))));
    });
    clear(menu).append(
      h('p', { class: 'muted small' }, 'Add to the panel'),
      ...items,
      h('div', { class: 'library-actions' },
        h('button', { type: 'button', class: 'link import-card', onclick: () => picker.click() }, 'Import a card…'),
        h('button', { type: 'button', class: 'link new-character', onclick: async () => { menu.hidden = true; if (await characterDialog()) await onChanged(); } }, 'New character')),
      h('p', { class: 'muted small' }, 'Or drop a card file (PNG, JSON, CHARX) anywhere on the page.'));
  };
  const button = h('button', { type: 'button', class: 'add', 'aria-haspopup': 'menu', 'aria-label': 'Add a character', title: 'Add a character',
    onclick: () => { menu.hidden = !menu.hidden; if (!menu.hidden) { render(); menu.querySelector('button')?.focus(); } } }, '⊕');
  menu.addEventListener('keydown', (e) => { if (e.key === 'Escape') { menu.hidden = true; button.focus(); } });
  return { el: h('span', { class: 'add-wrap' }, button, menu, picker), importFile: doImport };
}
