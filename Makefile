# Two commands work on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EWT := ../shared/data/ud/en_ewt

.PHONY: setup demo test lint bench bench-models en-model clean

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

# The shipped English model (models/README.md): two taggers, one per core, trained side by side for
# 28 minutes, then averaged into one float16 file. About 30 minutes; copy the result to models/ if
# it beats the shipped one on dev.
EN_TRAIN := OMP_NUM_THREADS=1 $(VENV)/bin/lstmtag train --train $(EWT)/en_ewt-ud-train.conllu \
	--dev $(EWT)/en_ewt-ud-dev.conllu --config configs/pos.toml --set model.dropout=0.4 \
	--set model.word_dropout=1.0 --max-minutes 28
en-model: setup
	mkdir -p runs
	$(EN_TRAIN) --out runs/en_ewt_a.safetensors > runs/en_ewt_a.log 2>&1 & \
	$(EN_TRAIN) --out runs/en_ewt_b.safetensors --set model.char_dim=64 --set model.char_hidden=200 \
	  --set train.seed=4 > runs/en_ewt_b.log 2>&1 & \
	wait
	$(VENV)/bin/lstmtag ensemble runs/en_ewt_a.safetensors runs/en_ewt_b.safetensors \
	  --dev $(EWT)/en_ewt-ud-dev.conllu --out runs/en_ewt_ensemble.safetensors

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
