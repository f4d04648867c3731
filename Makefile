# make demo   set up .venv (first time only) and run the whole lab on the built-in default (CPU, minutes)
# make test   set up .venv and run the linter and the test suite (offline)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench notebooks

$(STAMP): requirements.txt pyproject.toml scripts/setup.sh
	scripts/setup.sh $(VENV)
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/dialogsum-lab demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/pytest

# Benchmarks 1-4 on this machine (about 12 minutes on 2 CPU cores); results in benchmarks/results/.
bench: $(STAMP)
	cd benchmarks && ../$(BIN)/python bench_generate.py --n 100 --new-tokens 200 --batch-size 16 --repeats 2
	cd benchmarks && ../$(BIN)/python bench_train.py --repeats 2
	cd benchmarks && ../$(BIN)/python bench_memory.py
	cd benchmarks && ../$(BIN)/python bench_demo.py
