"""Benchmarks of misseg's hot paths against naive references of the same math (`python -m misseg.bench`)."""
