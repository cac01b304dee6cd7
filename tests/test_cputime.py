"""A process tree's CPU time (`greenscreen.meters.cputime`), read from the real /proc while
the tree's children start, work and are reaped."""

import subprocess
import sys
import time

from greenscreen.meters.cputime import tree_cpu_seconds

# A parent that starts one short busy child after another and reaps each: each reap moves
# the child's time from its own /proc entry into the parent's reaped-children fields.
REAPING_PARENT = """
import subprocess, sys, time
end = time.time() + float(sys.argv[1])
while time.time() < end:
    subprocess.run([sys.executable, "-c",
                    "import time\\nend = time.time() + 0.03\\nwhile time.time() < end: pass"])
"""


def test_a_tree_s_cpu_time_never_drops_while_its_children_are_reaped():
    """A child reaped between the read of its parent and the listing of the parent's
    children counted nowhere: the tree's time dropped by the child's for one poll (the CI
    run at 81a4aa1 charged two runs 312 J of a package's 300). It is a counter: it only
    grows."""
    parent = subprocess.Popen([sys.executable, "-c", REAPING_PARENT, "4"])
    readings = []
    try:
        while parent.poll() is None:
            readings.append(tree_cpu_seconds(parent.pid))
    finally:
        parent.wait(timeout=60)
    drops = [(a, b) for a, b in zip(readings, readings[1:]) if b < a]
    assert len(readings) > 100 and readings[-1] > readings[0]
    assert drops == [], f"{len(drops)} of {len(readings)} readings fell, e.g. {drops[:3]}"


# A child that works until it has used half a CPU second, says so, and works on until told.
BUSY_CHILD = """
import sys, time
from pathlib import Path
said, stop = Path(sys.argv[1]), Path(sys.argv[2])
while not stop.exists():
    if time.process_time() >= 0.5 and not said.exists():
        said.write_text("ok")
"""


def test_a_tree_counts_its_running_child_s_time(tmp_path):
    said, stop = tmp_path / "said", tmp_path / "stop"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {BUSY_CHILD!r}, {str(said)!r}, {str(stop)!r}])")])
    try:
        while not said.exists():
            assert parent.poll() is None
            time.sleep(0.05)
        running = tree_cpu_seconds(parent.pid)
    finally:
        stop.write_text("stop")
        parent.wait(timeout=60)
    assert running >= 0.5  # the child's, before any reap put it in the parent's fields
