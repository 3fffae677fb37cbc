# Two set-up commands: `make demo` and `make test`. Each creates or reuses .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench fidelity mutation hostile clean emulate-env

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,calibrate,cluster,search,flower]'
	touch $(STAMP)

# Flower lives in .venv beside simfl (the [flower] extra: flwr pins typer < 0.21, and simfl's CLI works with it,
# tests/test_beside_flower.py); kept as a name for older instructions.
emulate-env: $(STAMP)

demo: $(STAMP)
	$(BIN)/simfl run scenarios/quickstart.yaml --out runs/quickstart

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

# simfl's predictions against real Flower runs on shaped links, after a fresh calibration of the clients'
# profile (needs root; about 4 minutes): docs/fidelity.md
fidelity: $(STAMP)
	$(BIN)/python scripts/fidelity.py --rounds 5 --out runs/fidelity

# A corpus of hostile inputs (FIFOs, /dev/zero, alias bombs, huge numbers, forged lines...) through every command,
# written apart from the suite's own tests/test_hostile_inputs.py: each must be one line and exit 2 (about 5 minutes)
hostile: $(STAMP)
	$(BIN)/python scripts/hostile_corpus.py

# Mutation testing of simfl/sim and simfl/costs.py (about 5 minutes on 2 cores); the kill rate is in the README.
mutation: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt 'mutmut>=3.3'
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 || true
	$(BIN)/mutmut results --all true > mutants/results.txt || true
	$(BIN)/python scripts/mutation_summary.py mutants/results.txt

clean:
	rm -rf $(VENV) .venv-emulate runs mutants
