# The two commands a newcomer needs: `make run` and `make test` (`make test-fast` while editing).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-stamp
PYTHON ?= python3
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-fast mutate setup browser clean-venv

# (Re)install whenever pyproject.toml changes. pip's notes about local index
# folders it skips are noise, not errors, so they are filtered out.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]' 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	$(BIN)/pip check
	touch $@

setup: $(INSTALLED)

run: $(INSTALLED)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro
	@echo
	@$(BIN)/grocer summary
	@echo
	@echo "Submission:   data/submission/submission.csv"
	@echo "Metrics:      metrics/ (all of them: .venv/bin/dvc metrics show)"
	@echo "Plots:        .venv/bin/dvc plots show  (writes dvc_plots/index.html)"

# The review page's browser test drives Debian's chromium; install it when missing
# and the machine has apt-get (elsewhere, point CHROMIUM at a Chromium binary).
browser:
	@test -x $(CHROMIUM) || ! command -v apt-get >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(INSTALLED) browser
	PATH="$(CURDIR)/$(BIN):$$PATH" GROCER_CHROMIUM=$(CHROMIUM) $(BIN)/pytest

# Everything but the tests marked slow (pyproject.toml): a couple of minutes, no browser.
test-fast: $(INSTALLED)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest -m "not slow"

# Mutation testing of the honesty-critical modules with their fast tests ([tool.mutmut] in
# pyproject.toml). CPU-heavy and not part of `make test`. Resumable: an interrupted run
# continues where it stopped; mutants/ holds the mutants and their results.
mutate: $(INSTALLED)
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $${MUTATE_JOBS:-2}
	$(BIN)/mutmut results

clean-venv:
	rm -rf $(VENV)
