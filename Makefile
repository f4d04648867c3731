# make demo   set up .venv (first time only) and run the whole lab on the built-in default (CPU, minutes)
# make test   set up .venv and run the linter and the test suite (offline)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint

$(STAMP): requirements.txt pyproject.toml scripts/setup.sh
	scripts/setup.sh $(VENV)
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/dialogsum-lab demo

lint: $(STAMP)
	$(BIN)/ruff check src tests

test: lint
	$(BIN)/pytest
