"""python -m greenscreen_pipeline COMMAND: the `greenscreen` command (see `cli`)."""

import sys

from .cli import main

sys.exit(main())
