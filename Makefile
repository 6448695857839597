PY ?= .venv/bin/python
PIP ?= .venv/bin/pip
export WANDB_MODE ?= disabled

.PHONY: install test lint demo bench clean

# one command on a fresh machine: make install test
install:
	test -d .venv || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	$(PIP) install -e ".[dev,sweep,export,backbones,crf]"

# the slowest tests printed at the end: the suite is meant to stay well under 10 minutes on 2 cores
test:
	$(PY) -m pytest -x --durations=15

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check misseg tests

demo:
	$(PY) -m misseg.train experiment=demo

# make bench [DATA=DIR] [OUT=DIR]: results go to a new logs/bench/<time> (or OUT; an existing one is refused),
# never over the committed bench/results; DATA = a folder dataset for the data section
bench:
	$(PY) -m misseg.bench $(if $(DATA),--data-root $(DATA)) $(if $(OUT),--out-dir $(OUT))

clean:
	rm -rf logs outputs multirun .pytest_cache
