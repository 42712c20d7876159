# Tsunagu — the two commands a newcomer needs:
#   make run    install everything, build the frontend, load the demo city, serve :8000
#   make test   install everything, run the whole test suite (SQLite + PostgreSQL + Redis + browser)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install frontend system-deps run test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) frontend

frontend:
	@if [ -f frontend/package.json ]; then \
	  cd frontend && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund) && npm run build; \
	fi

# Debian packages the browser tests need (run as root; CI does this too).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium fonts-noto-cjk; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for browser tests"; fi; }

run: install
	$(VENV)/bin/tsunagu serve --demo

test: install system-deps
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@if [ -d frontend/node_modules ]; then cd frontend && npm run --silent typecheck; fi

bench: $(STAMP)
	$(PY) -m bench.feeds
	$(PY) -m bench.router
	$(PY) -m bench.quote
	$(PY) -m bench.darp
	$(PY) -m bench.simulate
	$(PY) -m bench.load
	$(PY) -m bench.intermodal
	$(PY) -m bench.emissions

clean:
	rm -rf $(VENV) var frontend/node_modules frontend/dist
