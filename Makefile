# Two entry points for a fresh machine: `make demo` (set up + train fcn8 on the built-in demo data)
# and `make test` (set up + run the whole test suite). Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.segtool-installed

.PHONY: install demo test lint bench clean readme-check

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev,plot,onnx,tensorboard]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/segtool train fcn8

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every ```bash example of README.md, run in a temp workspace of small inputs (tests/test_readme_examples.py).
readme-check: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_readme_examples.py

lint: $(STAMP)
	$(BIN)/ruff check segtool tests benchmarks

# Every benchmark script; each prints measured ratios against a baseline from the same run.
# Slow ones (fcn8_head at batch 8, stylize at 500 steps, train) take minutes each.
bench: $(STAMP)
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/labels.py
	$(BIN)/python benchmarks/voc_stats.py
	$(BIN)/python benchmarks/boxes.py --skip-cli
	$(BIN)/python benchmarks/fcn8_head.py
	$(BIN)/python benchmarks/stylize.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/train_kit.py
	$(BIN)/python benchmarks/deploy.py
	$(BIN)/python benchmarks/threads.py
# Not in `bench`: they need the real datasets (segtool download) or run for many minutes.
#   benchmarks/real_data.py --camvid data/CamVid --bag data/bag
#   benchmarks/boxes.py --dataset   (1M x 1M grouped boxes)   benchmarks/boxes.py --readers 1000000

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
