# Two commands work on a fresh machine: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EWT := ../shared/data/ud/en_ewt

.PHONY: setup demo test lint bench bench-models bench-speed en-model tr-model clean

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

# The shipped English models (models/README.md), about 115 minutes on 2 cores:
# 1. The teacher: two taggers trained side by side (one per core, 28 minutes), averaged (`en` until v5).
# 2. en (v7): one small student with UPOS, XPOS, FEATS and lemma heads, distilled from the teacher as one
#    data-parallel job on 2 workers (torchrun, 70 minutes or 60 epochs), packed to float16 weights
#    tagging in bfloat16, with a lemma lexicon from EWT train (docs/lemmas.md).
# 3. Its raw-text segmenter (one layer of 2x16 over characters, about 6 minutes).
# Copy the results to models/ only if they beat the shipped ones on dev.
EWT_DATA := --train $(EWT)/en_ewt-ud-train.conllu --dev $(EWT)/en_ewt-ud-dev.conllu
EN_TRAIN := OMP_NUM_THREADS=1 $(VENV)/bin/lstmtag train $(EWT_DATA) --config configs/pos.toml \
	--set model.dropout=0.4 --set model.word_dropout=1.0 --max-minutes 28

en-model: setup
	mkdir -p runs
	$(EN_TRAIN) --out runs/en_ewt_a.safetensors > runs/en_ewt_a.log 2>&1 & \
	$(EN_TRAIN) --out runs/en_ewt_b.safetensors --set model.char_dim=64 --set model.char_hidden=200 \
	  --set train.seed=4 > runs/en_ewt_b.log 2>&1 & \
	wait
	$(VENV)/bin/lstmtag ensemble runs/en_ewt_a.safetensors runs/en_ewt_b.safetensors \
	  --dev $(EWT)/en_ewt-ud-dev.conllu --out runs/en_ewt_accurate.safetensors
	$(VENV)/bin/lstmtag distill runs/en_ewt_accurate.safetensors $(EWT_DATA) --config configs/student.toml \
	  --nproc 2 --max-minutes 70 --out runs/en_ewt_student.safetensors > runs/en_ewt_student.log 2>&1
	$(VENV)/bin/lstmtag pack runs/en_ewt_student.safetensors --precision bf16 \
	  --lemma-lexicon $(EWT)/en_ewt-ud-train.conllu --dev $(EWT)/en_ewt-ud-dev.conllu --out runs/en_ewt.safetensors
	OMP_NUM_THREADS=1 $(VENV)/bin/lstmtag train --config configs/segmenter_small.toml $(EWT_DATA) \
	  --max-minutes 13 --out runs/en_ewt.segmenter.safetensors > runs/en_ewt.segmenter.log 2>&1

# The Turkish (UD IMST) raw-text pipeline, with the English commands (docs/turkish.md), about 30
# minutes on one core: the segmenter, then the tagger (UPOS, XPOS, FEATS, lemma), then the scores
# (bench/results/turkish.md). Into runs/ only: IMST is CC BY-NC-SA 4.0, so no Turkish model ships.
IMST := ../shared/data/ud/tr_imst
IMST_DATA := --train $(IMST)/tr_imst-ud-train.conllu --dev $(IMST)/tr_imst-ud-dev.conllu
tr-model: setup
	mkdir -p runs
	OMP_NUM_THREADS=1 $(VENV)/bin/lstmtag train --config configs/segmenter_tr.toml $(IMST_DATA) --max-minutes 14 \
	  --out runs/tr_imst.segmenter.safetensors > runs/tr_imst.segmenter.log 2>&1
	OMP_NUM_THREADS=1 $(VENV)/bin/lstmtag train --config configs/pos.toml $(IMST_DATA) --max-minutes 15 \
	  --set 'data.columns=["upos","xpos","feats","lemma"]' --set train.ema=0.99 \
	  --out runs/tr_imst.tagger.safetensors > runs/tr_imst.tagger.log 2>&1
	$(PY) bench/turkish.py --model runs/tr_imst.tagger.safetensors --segmenter runs/tr_imst.segmenter.safetensors

# Tagging speed side by side with spaCy (bench/speed.py); installs the bench-only spaCy extra.
bench-speed: setup
	$(PIP) install -q -e '.[bench]'
	$(PY) bench/speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
