# The two commands a newcomer needs: `make demo` (the whole platform on the embedded
# SQLite default, with a virtual operator) and `make test` (lint, types, all tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo run test lint typecheck pytest system-deps bench clean

$(STAMP): pyproject.toml setup.py src/ztsim/radius/_fast.c src/ztsim/_mmsg.c src/ztsim/aka/_milenage.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

demo: $(STAMP)
	$(BIN)/ztsim demo

run: $(STAMP)
	$(BIN)/ztsim up

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

# Tests are held to the same strictness; [tool.mypy] names their package bases.
typecheck: $(STAMP)
	$(BIN)/mypy src tests

# The C modules are optional for running ztsim, not for its tests: built again here if
# the install ran before system-deps brought a compiler.
pytest: $(STAMP) system-deps
	$(BIN)/python -c "import ztsim.radius._fast, ztsim._mmsg, ztsim.aka._milenage" 2>/dev/null || $(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
