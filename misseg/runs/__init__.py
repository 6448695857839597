"""Run bookkeeping: config schemas and validation, one-line errors, run dirs and resume, provenance,
metrics.json and summaries, sweep summaries, console noise."""
