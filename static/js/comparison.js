// Comparison: sessions lined up by floor turn, their differences marked,
// the first divergence found — the rules of `panel_actors::comparison`
// (actors/src/comparison.rs), followed here line for line on the same
// files, so the viewer's compare page and `panel compare --json` give one
// answer (a browser test holds them to it: keep the two in step).
//
// - Turn t of one session stands beside turn t of another, except that a
//   session branched from another one in the set starts where its parent
//   was then (its turn t is its parent's turn parent.turn + t), and the
//   turns they share are folded.
// - A turn diverges when the floor lines (or @-addresses) differ, or the
//   order of answers, or the lead, or one speaks where another passes, or
//   a speaker's words differ, or a session has no such turn. The confer is
//   shown but never counts.
// - The output has the JSON shape of the Rust `Comparison` (without the
//   metrics, which the page reads from dynamics.json, never computes).
//   Nothing here touches the DOM.

/** The header of one log: id, depth, cast, parent, offset (0 until aligned). */
function header(events) {
  const open = events[0];
  const out = { id: open ? open.session : '', depth: 0, cast: [], offset: 0 };
  if (open && open.kind === 'session-open') {
    out.depth = open.config.depth;
    out.cast = open.participants.map((p) => p.id);
    if (open.parent) out.parent = open.parent;
  }
  return out;
}

/** Each turn's side, by its aligned number: a turn opens at its floor line. */
function sides(events, offset) {
  const out = new Map();
  let current = null;
  for (const e of events) {
    // A room's later lines of the same turn join its floor (floor.rs `as_one`).
    if (e.kind === 'human-speak' && current === e.turn + offset && out.has(current)) {
      const side = out.get(current);
      side.floor = `${side.floor}\n${e.seat ? `${e.seat}: ${e.text}` : e.text}`;
      if (!side.to && e.to) side.to = e.to;
      continue;
    }
    if (e.kind === 'human-speak') {
      const side = { own_turn: e.turn, floor: e.seat ? `${e.seat}: ${e.text}` : e.text, order: [], lead: null, acts: [], confer: [], usd: 0 };
      if (e.to) side.to = e.to;
      out.set(e.turn + offset, side);
      current = e.turn + offset;
      continue;
    }
    const side = current === null ? undefined : out.get(current);
    if (!side) continue;
    if (e.kind === 'speak') {
      if (side.lead === null) side.lead = e.speaker;
      side.order.push(e.speaker);
      side.acts.push(e.text === '' ? { speaker: e.speaker, kind: 'speak' } : { speaker: e.speaker, kind: 'speak', text: e.text });
    } else if (e.kind === 'pass') {
      side.order.push(e.speaker);
      side.acts.push({ speaker: e.speaker, kind: 'pass' });
    } else if (e.kind === 'deliberation') {
      side.confer.push({ speaker: e.speaker, text: e.text });
    } else if (e.kind === 'cost') {
      side.usd += e.usd ?? 0;
    }
  }
  for (const side of out.values()) side.usd = Math.round(side.usd * 1e6) / 1e6;
  return out;
}

/**
 * One sample of a replay of turn `turn` as a side of that turn: the
 * session's own floor lines of the turn (a replay keeps them), then what
 * the sample said. `sample`: the replay log's events of that sample.
 */
export function sampleSide(events, turn, sample) {
  const floor = events.filter((e) => e.kind === 'human-speak' && e.turn === turn);
  return sides([...floor, ...sample], 0).get(turn) || null;
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

/** What differs between the sides present at one turn. */
export function differences(present) {
  if (present.length === 0) return [];
  const [first, ...rest] = present;
  const differs = [];
  const note = (what) => { if (!differs.includes(what)) differs.push(what); };
  for (const other of rest) {
    if (other.floor !== first.floor || other.to !== first.to) note('floor');
    if (!same(other.order, first.order)) note('order');
    if (other.lead !== first.lead) note('lead');
  }
  // Byte order, as Rust sorts `&str`: ids are ASCII, so code units agree.
  const speakers = [...new Set(present.flatMap((s) => s.acts.map((a) => a.speaker)))].sort();
  for (const who of speakers) {
    const answers = present.map((s) => s.acts.find((a) => a.speaker === who));
    const kinds = answers.map((a) => (a ? a.kind : null));
    if (kinds.some((k) => k !== kinds[0])) note(`answer:${who}`);
    else if (answers.some((a) => (a ? a.text ?? '' : null) !== (answers[0] ? answers[0].text ?? '' : null))) note(`text:${who}`);
  }
  return differs;
}

/**
 * Lines up the sessions whose logs are `logs` (each an array of events in
 * log order). Answers `{sessions, folded?, turns, first_divergence}` and,
 * beside them, `own`: each session's sides by aligned turn (folded ones too).
 */
export function compare(logs) {
  const sessions = logs.map(header);
  // A child's offset is its parent's turn plus the parent's own offset.
  for (let round = 0; round < sessions.length; round++) {
    for (const s of sessions) {
      if (!s.parent) continue;
      const p = sessions.find((x) => x.id === s.parent.id);
      if (p) s.offset = p.offset + s.parent.turn;
    }
  }
  const own = logs.map((events, i) => sides(events, sessions[i].offset));
  // Folding needs one root: unrelated sessions are compared from turn 1.
  const roots = sessions.filter((s) => s.offset === 0).length;
  const offsets = sessions.filter((s) => s.offset > 0).map((s) => s.offset);
  const through = roots === 1 && offsets.length ? Math.min(...offsets) : null;
  let folded = null;
  if (through !== null) {
    const i = sessions.findIndex((s, k) => s.offset === 0 && own[k].has(through));
    if (i >= 0) folded = { through, of: sessions[i].id };
  }
  const from = folded ? folded.through + 1 : 1;
  const last = Math.max(0, ...own.map((m) => (m.size ? Math.max(...m.keys()) : 0)));
  const turns = [];
  for (let turn = from; turn <= last; turn++) {
    const by_session = {};
    const present = [];
    sessions.forEach((s, i) => {
      const side = own[i].get(turn);
      if (side) {
        by_session[s.id] = side;
        present.push(side);
      }
    });
    const differs = differences(present);
    if (present.length < sessions.length) differs.unshift('missing');
    turns.push({ turn, floor: present.length ? present[0].floor : null, by_session, differs });
  }
  const diverging = turns.find((t) => t.differs.length);
  const out = { sessions, turns, first_divergence: diverging ? diverging.turn : null };
  if (folded) out.folded = folded;
  return Object.defineProperty(out, 'own', { value: own, enumerable: false });
}
