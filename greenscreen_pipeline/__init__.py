"""The greenscreen sweep application: config -> runs -> analysis -> final run -> report.

Installed with the library (`pip install ".[pipeline,tensorflow]"`) as the `greenscreen`
command; `./greenscreen.sh` sets up .venv and runs it. docs/architecture.md maps it.
"""
