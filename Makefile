# Two entry points: `make book` builds the HTML book, `make test` runs every test
# (two pytest-xdist workers, one per core; each notebook stays in one worker and one kernel).
# Both create .venv (Python 3.11 + pip) on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXECUTE ?= 0
# Fixed thread count: float32 reductions differ in the last digits between 1 and 2 threads.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1

.PHONY: book test lint clean execute

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[book,test]'
	touch $(STAMP)

execute: $(STAMP)
	$(BIN)/python tools/run_notebooks.py

book: $(STAMP)
ifeq ($(EXECUTE),1)
	$(BIN)/python tools/run_notebooks.py
endif
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "Book written to _build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check mini_dl torch_twin tests benchmarks tools examples

test: $(STAMP) lint
	-tools/install_browser.sh  # Chromium for tests/test_browser.py (skips without it, fails if CI=true)
	$(BIN)/python -m pytest tests mini_dl torch_twin book --doctest-modules --nbval \
		--nbval-current-env --nbval-sanitize-with book/sanitize.cfg -n 2 --dist loadfile

clean:
	rm -rf _build
