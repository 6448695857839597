PY ?= .venv/bin/python
PIP ?= .venv/bin/pip
export WANDB_MODE ?= disabled

.PHONY: install test lint demo bench clean

# one command on a fresh machine: make install test
install:
	test -d .venv || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	$(PIP) install -e ".[dev,sweep,export,backbones]"

test:
	$(PY) -m pytest -x

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check misseg tests

demo:
	$(PY) -m misseg.train experiment=demo

bench:
	$(PY) -m misseg.bench

clean:
	rm -rf logs outputs multirun .pytest_cache
