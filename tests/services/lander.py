"""A lander process for the multi-writer tests: ``python tests/services/lander.py HOME DAY[,DAY...] [--die-after-insert]``.

It lands each day with the real ``ingest.land_day`` (one DuckLake commit per day), configured by the environment
like any chartlake process. ``--die-after-insert`` makes it SIGKILL itself inside the day's transaction, after the
data files were written and before or while COMMIT runs (``--die-delay`` seconds after COMMIT starts; negative:
before COMMIT), as a crashed worker or an OOM kill would.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from orchestration.config import Home  # noqa: E402
from orchestration.lib import ingest, lake  # noqa: E402
from orchestration.lib.payload_store import store_for  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("home")
    ap.add_argument("days")
    ap.add_argument("--die-after-insert", action="store_true")
    ap.add_argument("--die-delay", type=float, default=-1.0)
    ap.add_argument("--ready-file")
    args = ap.parse_args()
    home = Home(Path(args.home))
    if args.die_after_insert:
        original = lake.set_commit_message

        def then_die(con, message, **extra):
            original(con, message, **extra)
            if args.ready_file:
                Path(args.ready_file).write_text(message)
            if args.die_delay < 0:
                os.kill(os.getpid(), signal.SIGKILL)
            # COMMIT is the next statement on the main thread: die while it runs.
            threading.Timer(args.die_delay, os.kill, (os.getpid(), signal.SIGKILL)).start()

        lake.set_commit_message = then_die
    with lake.session(home) as con:
        for day in args.days.split(","):
            res = ingest.land_day(con, store_for(home), dt.date.fromisoformat(day), run_id=f"lander-{os.getpid()}")
            print(f"{day} {res.rows_inserted} {res.snapshot_id}", flush=True)
    if args.die_after_insert:
        time.sleep(5)  # the timer kills the process; never report success
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
