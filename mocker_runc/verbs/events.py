"""runc events: the container's cgroup figures as JSON lines (--stats: once)."""

import json

from .. import container
from .common import argparse

HELP = "print the container's cgroup usage as JSON (--stats: once)"


def duration(text: str) -> float:
    """A Go-style duration as runc takes it: 5s, 500ms, 1m, 1.5s."""
    for unit, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if text.endswith(unit):
            try:
                seconds = float(text[:-len(unit)]) * scale
            except ValueError:
                break
            if seconds > 0:
                return seconds
    raise argparse.ArgumentTypeError(f"{text!r} is not a duration (like 5s or 500ms)")


def add_arguments(p):
    p.add_argument("--stats", action="store_true", help="print the usage figures once, then exit")
    p.add_argument("--interval", type=duration, default=5.0, metavar="DURATION",
                   help="time between two stats events (runc's 5s, 500ms, 1m)")
    p.add_argument("id")


def run(store, args):
    # runc's events: one {"type": "stats"} object per line, from the cgroup's files
    if args.stats:
        print(json.dumps(container.stats_event(store, args.id)))
        return
    for event in container.events(store, args.id, args.interval):
        print(json.dumps(event), flush=True)
