# Two commands work on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EWT := ../shared/data/ud/en_ewt

.PHONY: setup demo test lint bench bench-models clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	# torch first, pinned to the CPU wheel on disk: any other resolution pulls GBs of CUDA packages.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[all]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/lstmtag tag --model en --input text --output table examples/sentences.txt

test: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

# Benchmarks (minutes to an hour; they print and save tables in bench/results/).
bench: setup
	$(PY) bench/accuracy.py
	$(PY) bench/serve_load.py
	$(PY) bench/lm.py --model runs/shakespeare_char.safetensors

bench-models: setup
	$(PY) bench/models.py --minutes 8 --jobs 1

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
