#!/usr/bin/env python3
"""Plays one scripted 10-turn session through panel against an
OpenAI-compatible server and prints how well the model kept the format.

Used by scripts/llama-recipe; standard library only. It starts panel on a
free port with the given --constrain setting, opens a session of three
characters, says ten lines (two of them @-addressed), waits for each turn to
end, then reads the session's log and reports: turns closed, turns with at
least one speak, unparsed events, speaks by the right characters (on stage,
and the addressee alone for an @-turn), and the mean time per turn.
"""

import argparse
import json
import re
import urllib.error
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime

LINES = [
    "What should a hospital automate first?",
    "Why that, and not the paperwork?",
    "@Ada what would fail first?",
    "Who should decide what gets automated?",
    "What would the nurses say about it?",
    "@Otto how would we know it worked?",
    "What has history taught us about this kind of change?",
    "Where do you disagree most?",
    "What would you do in the first month?",
    "One sentence each: what matters most?",
]
CAST = ["ada", "otto", "iris"]


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as res:
        return json.load(res)


def main():
    ap = argparse.ArgumentParser()
    for flag in ("--panel", "--logs", "--roster", "--static", "--openai", "--constrain"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = dict(os.environ, OPENAI_BASE_URL=args.openai, PANEL_MODEL="local")
    env.pop("ANTHROPIC_API_KEY", None)
    server = subprocess.Popen(
        [args.panel, "--addr", f"127.0.0.1:{port}", "--logs", args.logs, "--roster", args.roster,
         "--static", args.static, "--provider", "openai", "--constrain", args.constrain,
         "--max-tokens", os.environ.get("PANEL_MAX_TOKENS", "1200")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                call(base, "GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        sid = call(base, "POST", "/api/sessions", {"cast": CAST, "title": f"llama recipe ({args.constrain})"})["id"]
        refused = None
        for n, line in enumerate(LINES, 1):
            try:
                call(base, "POST", f"/api/sessions/{sid}/say", {"text": line})
            except urllib.error.HTTPError as e:
                # A full window (context-full) ends the run: panel refused before sending.
                refused = f"turn {n} refused: {json.load(e)['error']['code']}"
                break
            while True:
                d = call(base, "GET", f"/api/sessions/{sid}")
                if d["turns"] >= n and not d["live"]["turn_in_flight"]:
                    break
                time.sleep(0.2)
        d = call(base, "GET", f"/api/sessions/{sid}")
        constraint = d["live"]["config"].get("constraint")
    finally:
        server.terminate()
        server.wait()
    report(os.path.join(args.logs, sid, "events.jsonl"), args.constrain, constraint, refused)


def report(path, label, constraint, refused):
    events = [json.loads(l) for l in open(path, encoding="utf-8") if l.strip()]
    names = {}
    for e in events:
        if e["kind"] == "session-open":
            names.update({p["id"]: p["name"] for p in e["participants"]})
    turns = {}
    for e in events:
        t = turns.setdefault(e["turn"], {"speaks": 0, "right": 0, "passes": 0, "bleed": 0, "start": None, "end": None,
                                         "finish": None, "max_tokens": None, "cast": [], "to": None})
        if e["kind"] == "human-speak":
            t["to"] = e.get("to")
        elif e["kind"] == "turn-start":
            t["start"], t["cast"] = e["ts"], e["cast"]
        elif e["kind"] == "speak":
            t["speaks"] += 1
            ok = e["speaker"] in t["cast"] and (t["to"] is None or e["speaker"] == t["to"])
            t["right"] += ok
            # Another's line inside this speak: a line opening with an on-stage name and a colon.
            t["bleed"] += any(re.match(rf"\s*{re.escape(names.get(c, c))}\s*:", l) for l in e["text"].splitlines() for c in t["cast"])
        elif e["kind"] == "pass":
            t["passes"] += 1
        elif e["kind"] == "turn-end":
            t["end"] = e["ts"]
            provenance = e.get("provenance") or {}
            t["finish"], t["max_tokens"] = provenance.get("stop_reason"), provenance.get("max_tokens")
    closed = [t for t in turns.values() if t["end"]]
    stamp = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    times = [(stamp(t["end"]) - stamp(t["start"])).total_seconds() for t in closed if t["start"]]
    speaks = sum(t["speaks"] for t in turns.values())
    print(f"constrain={label} (session reports constraint: {constraint})" + (f" — {refused}" if refused else ""))
    budgets = sorted({t["max_tokens"] for t in closed if t["max_tokens"]})
    print(f"  max_tokens per turn             {', '.join(map(str, budgets)) or '—'}")
    print(f"  turns closed                    {len(closed)} / {len(LINES)}")
    print(f"  turns ended on the model's stop {sum(1 for t in closed if t['finish'] == 'stop')}  (on length: {sum(1 for t in closed if t['finish'] == 'length')})")
    print(f"  turns with at least one speak   {sum(1 for t in closed if t['speaks'])}")
    print(f"  unparsed events                 {sum(1 for e in events if e['kind'] == 'unparsed')}")
    print(f"  speaks by the right characters  {sum(t['right'] for t in turns.values())} / {speaks}")
    print(f"  speaks carrying another's line  {sum(t['bleed'] for t in turns.values())}")
    print(f"  passes                          {sum(t['passes'] for t in turns.values())}")
    print(f"  confer lines                    {sum(1 for e in events if e['kind'] == 'deliberation')}")
    print(f"  errors                          {[e['code'] for e in events if e['kind'] == 'error']}")
    print(f"  mean time per turn              {sum(times) / max(len(times), 1):.1f} s")


if __name__ == "__main__":
    sys.exit(main())
