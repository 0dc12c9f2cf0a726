# Two commands a newcomer needs: `make run` (or `make demo`) and `make test`. Both make .venv and install into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run demo test lint bench clean

$(BIN)/till: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@bash scripts/install-fonts.sh || true
	@bash scripts/install-tools.sh || true
	@touch $@

run: $(BIN)/till
	$(BIN)/till run

demo: $(BIN)/till
	$(BIN)/till demo

test: $(BIN)/till
	@bash scripts/install-tools.sh || true
	$(BIN)/ruff check .
	$(BIN)/mypy
	@# Byte-compiled once here: with PYTHONDONTWRITEBYTECODE set (as on CI) every till, emulator and
	@# crash-kill child the tests start would otherwise compile each module it imports again.
	@$(BIN)/python -m compileall -q terminal drivers emulator sim firmware_profiles tests > /dev/null
	$(BIN)/python -m pytest -q

bench: $(BIN)/till
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var build *.egg-info
