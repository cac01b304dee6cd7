"""Everything that trains one run: the run process (`python -m greenscreen_pipeline.run`,
a fresh process per run with `settings.isolate_runs`), the warm worker that trains runs one
after another (`worker.py`), and one run's path from data to results (`training.py` with
`data`, `user_data`, `batches`, `models`, `recipe`, `checkpoint`, `own_loop`)."""
