# make demo   set up .venv (first time only) and run the whole lab on the built-in default (CPU, minutes)
# make test   set up .venv and run the linter and the test suite (offline)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAGEMAKER_STAMP := $(VENV)/.sagemaker-installed

.PHONY: setup demo test lint bench bench-course notebooks

$(STAMP): requirements.txt pyproject.toml scripts/setup.sh
	scripts/setup.sh $(VENV)
	touch $@

setup: $(STAMP)

# The SageMaker SDK and moto, for the tests of `dialogsum-lab sagemaker` (against a fake AWS).
$(SAGEMAKER_STAMP): $(STAMP) requirements-sagemaker.txt
	$(BIN)/python -m pip install --quiet -r requirements-sagemaker.txt
	touch $@

demo: $(STAMP)
	$(BIN)/dialogsum-lab demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

# Debian's Chromium and its driver, for the review app's browser test (tests/test_review_browser.py).
BROWSER_DRIVER := /usr/bin/chromedriver
$(BROWSER_DRIVER):
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver

# pytest also reads the notebooks `notebooks` just executed (tests/test_notebooks.py); the browser test saves its
# screenshots of the review app in runs/screenshots.
test: lint notebooks $(SAGEMAKER_STAMP) $(BROWSER_DRIVER)
	DIALOGSUM_LAB_EXECUTED_NOTEBOOKS="$(CURDIR)/$(NB_OUT)" DIALOGSUM_LAB_SCREENSHOTS="$(CURDIR)/runs/screenshots" \
	  $(BIN)/pytest

# Execute every notebook headless on the default preset, the miniature (fails on any cell error); outputs stay in
# runs/, where the tests' learning tier reads the runs the notebooks trained.
NB_OUT := runs/notebooks-default
notebooks: $(STAMP) $(SAGEMAKER_STAMP)
	rm -rf $(NB_OUT) && mkdir -p $(NB_OUT)
	for nb in notebooks/0*.ipynb; do \
	  $(BIN)/papermill "$$nb" "$(NB_OUT)/$$(basename $$nb)" -p preset miniature -p out_dir "$(CURDIR)/$(NB_OUT)/runs" \
	    --cwd "$(NB_OUT)" --no-progress-bar --log-level WARNING || exit 1; \
	done
	@echo "all notebooks ran: $(NB_OUT)"

# Benchmarks 1-4, 8 and 9 on this machine (about 40 minutes on 2 CPU cores); results in benchmarks/results/.
bench: $(STAMP)
	cd benchmarks && ../$(BIN)/python bench_generate.py --n 100 --new-tokens 200 --batch-size 16 --repeats 2
	cd benchmarks && ../$(BIN)/python bench_cpu_eval.py --model flan-t5-base-random --n 16 --new-tokens 200 \
	  --batch-size 16 --repeats 1
	cd benchmarks && ../$(BIN)/python bench_train.py --repeats 2
	cd benchmarks && ../$(BIN)/python bench_memory.py --steps 3
	cd benchmarks && ../$(BIN)/python bench_memory.py --batch-size 1 --source-tokens 256 --target-tokens 64 --steps 1 \
	  --out results/memory-small-batch.json
	cd benchmarks && ../$(BIN)/python bench_demo.py

# The course preset's stages on flan-t5-base's shape (about 20 minutes on 2 CPU cores); results/course.json.
bench-course: $(STAMP)
	cd benchmarks && ../$(BIN)/python bench_course.py
