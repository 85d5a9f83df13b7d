PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format clean docs browser vendor screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shipyard demo

# Test files run in parallel (pytest-xdist), each file's tests in one worker so the fixtures a
# module shares are built once. The suite mostly waits on subprocesses (builds, model servers),
# so three workers keep two cores busy.
TEST_WORKERS ?= 3
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -rs -n $(TEST_WORKERS) --dist loadfile

# The dashboard's browser tests drive Debian's Chromium (Playwright's own download cannot be
# reached here). Installed when missing and this runs as root; otherwise the tests say how.
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The README's screenshots, taken by the browser tests.
screenshots: $(STAMP) browser
	SHIPYARD_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/browser

# Front-end libraries, copied from their npm packages into the Python package (committed, so
# the server never needs the network). Run after changing a version here.
HTMX := htmx.org@2.0.11
UPLOT := uplot@1.6.32
AXE := axe-core@4.10.3
VENDOR := src/shipyard/server/dashboard/static/vendor
vendor:
	rm -rf .vendor && mkdir -p .vendor
	cd .vendor && npm pack --silent $(HTMX) $(UPLOT) $(AXE) >/dev/null && for f in *.tgz; do mkdir -p "$${f%.tgz}" && tar xzf "$$f" -C "$${f%.tgz}"; done
	cp .vendor/htmx.org-*/package/dist/htmx.min.js $(VENDOR)/
	cp .vendor/htmx.org-*/package/LICENSE $(VENDOR)/htmx.LICENSE
	cp .vendor/uplot-*/package/dist/uPlot.iife.min.js .vendor/uplot-*/package/dist/uPlot.min.css $(VENDOR)/
	cp .vendor/uplot-*/package/LICENSE $(VENDOR)/uPlot.LICENSE
	cp .vendor/axe-core-*/package/axe.min.js tests/browser/vendor/
	cp .vendor/axe-core-*/package/LICENSE tests/browser/vendor/axe.LICENSE
	rm -rf .vendor

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Regenerates the shipyard.yaml reference in README.md from the config models.
docs: $(STAMP)
	$(BIN)/python -c 'from pathlib import Path; from shipyard.config.reference import write_into; write_into(Path("README.md"))'
