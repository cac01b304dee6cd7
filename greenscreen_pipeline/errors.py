"""The errors the command line turns into one line and an exit code (in `cli.main`, only).

Code below the command line raises these instead of printing and exiting, so a
function can be called from a test, a Ray task or another program, and the
message and exit code are decided in one place.
"""

from __future__ import annotations

import errno
from pathlib import Path

# A folder this command cannot write: read-only (an archive, a read-only mount), not ours,
# or full. Said in one line, not as a traceback.
WRITE_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


class PipelineError(Exception):
    """A problem the user can act on; `cli.main` prints "greenscreen: <prefix><message>"."""

    exit_code = 1
    prefix = ""


class UsageError(PipelineError):
    """A flag, a combination of flags or a folder that this command cannot work with."""

    exit_code = 2


class MissingDependency(UsageError):
    """An optional package or program the command needs is not installed."""


class SubmitError(PipelineError):
    """A cluster refused a submission (sbatch failed)."""


class Interrupted(PipelineError):
    """The sweep was stopped by a signal; `statuses` says where each run stands."""

    exit_code = 130

    def __init__(self, message: str, statuses: list[dict] | None = None) -> None:
        super().__init__(message)
        self.statuses = statuses or []


class RunsFailing(PipelineError):
    """The sweep stopped because its last runs all failed with the same error (a mistake
    in your code or data that every further run would meet too), or no run of the sweep
    finished."""


def cannot_write(exc: OSError, command: str) -> str:
    """One line: what could not be written, why, and what to do."""
    where = f"cannot write into {Path(exc.filename).parent}: {exc.strerror}" if exc.filename \
        else str(exc.strerror or exc)
    if command in ("analyze", "report"):
        return (f"{where}. A sweep folder that cannot be written (an archive) is analysed "
                "with `greenscreen analyze --out DIR`, and reported with `greenscreen report "
                "--analysis DIR`")
    return f"{where}. Pass a --sweep-dir (or settings.sweep_dir) you can write to"
