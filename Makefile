# The course's commands. On a fresh machine with Python 3.11:
#   make lab       create the environment and open the course in JupyterLab
#   make test      create the environment and run every test
#   make lectures  run every lecture headless in this machine's profile (results under build/)

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PROFILE ?=
STAMP  := $(VENV)/.installed

.PHONY: env lab test lint lectures solutions release check-release bench bench-grading lock clean

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

lab: env
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab

test: env
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

lint: env
	$(BIN)/ruff check course_lib tests benchmarks

lectures: env
	$(BIN)/course run lectures/*.ipynb --out build $(if $(PROFILE),--profile $(PROFILE))

solutions: env
	$(BIN)/course run solutions/*.ipynb --out build $(if $(PROFILE),--profile $(PROFILE))

release: env
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/course release

check-release: env
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/course release --check

bench: env
	$(BIN)/python benchmarks/bench_likelihood.py $(if $(PROFILE),--profile $(PROFILE))
	$(BIN)/python benchmarks/bench_sparse_coding_autoencoders.py $(if $(PROFILE),--profile $(PROFILE))
	$(BIN)/python benchmarks/bench_energy_models.py $(if $(PROFILE),--profile $(PROFILE))

bench-grading: env
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/bench_grading.py

# Regenerate constraints.txt from a clean environment built from pyproject.toml alone.
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet -e ".[test]"
	{ echo "# The full lock of the course environment (Python 3.11): \`make lock\` regenerates it from"; \
	  echo "# a fresh install of pyproject.toml. torch comes as the CPU or CUDA build of 2.13.0."; \
	  build/lock-venv/bin/python -m pip freeze --exclude-editable \
	    | grep -v -i -E '^(course-lib|pip|setuptools|wheel)==' | sed 's/+cpu//; s/+cu[0-9]*//'; } > constraints.txt
	rm -rf build/lock-venv

clean:
	rm -rf build
