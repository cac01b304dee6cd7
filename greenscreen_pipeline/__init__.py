"""The greenscreen sweep application: config -> runs -> analysis -> final run -> report.

Runs from the checkout (`./greenscreen.sh`, or `python -m pipeline`); not installed by pip.
"""
