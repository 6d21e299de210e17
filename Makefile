# Every target sets itself up: a fresh machine needs only Python 3.10+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run serve test bench bench-server lint clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "promptshelf needs Python 3.10 or newer"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The command-line tour on the embedded store ./promptshelf-data; safe to run again and again
# (the import skips versions that are already there).
TOUR_PROMPT := wf_001_llm_1
run: $(STAMP)
	$(BIN)/promptshelf init
	$(BIN)/promptshelf import examples/seed-store
	$(BIN)/promptshelf list
	$(BIN)/promptshelf log $(TOUR_PROMPT)
	$(BIN)/promptshelf diff $(TOUR_PROMPT) 1.0.0 best
	$(BIN)/promptshelf show $(TOUR_PROMPT) best
	$(BIN)/promptshelf verify
	@echo "Next: make serve  (this store over HTTP: http://127.0.0.1:8420/api/v1/prompts/$(TOUR_PROMPT), docs at /docs, the web page at /ui/)"

# The REST API and web page over ./promptshelf-data on 127.0.0.1:8420 (Ctrl-C stops it).
serve: $(STAMP)
	$(BIN)/promptshelf serve

# Two workers (pytest-xdist): a third of the suite waits on PostgreSQL, SeaweedFS, servers and
# child processes, so two workers keep two cores busy. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# The web page's tests drive Debian's Chromium through Playwright (Playwright's own browser
# download cannot work here). Installed only when missing, and only as root with apt; otherwise
# those tests skip (and fail under CI=true).
CHROMIUM_PACKAGES := chromium fonts-liberation
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends $(CHROMIUM_PACKAGES); \
		else \
			echo "chromium is missing and cannot be installed here: the browser tests skip" \
				"(as root: apt-get install --no-install-recommends $(CHROMIUM_PACKAGES))"; \
		fi; }

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_diff.py

# The server benchmark drives load with Debian's wrk, installed when missing.
bench-server: $(STAMP)
	@command -v wrk >/dev/null || apt-get install -y --no-install-recommends wrk || \
		{ apt-get update && apt-get install -y --no-install-recommends wrk; }
	$(BIN)/python benchmarks/server_bench.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy

clean:
	rm -rf $(VENV) promptshelf-data .pytest_cache .mypy_cache .ruff_cache
