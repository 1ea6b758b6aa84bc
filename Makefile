# vrhub: `make serve` and `make test` are all a new user needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.vrhub-installed
NODE_STAMP := node_modules/.vrhub-installed
SYS_STAMP := var/.system-packages
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=

.PHONY: serve test lint bench setup migrate system-deps clean

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.lock
	$(PIP) install --quiet --no-deps mediapipe==0.10.21
	$(PIP) install --quiet --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian packages the test suite drives as real clients (browser, video decoder, Blender's and
# Godot 3's glTF importers; Godot's editor imports under Xvfb).
system-deps: $(SYS_STAMP)
$(SYS_STAMP):
	@mkdir -p var
	@if ! command -v chromium >/dev/null || ! command -v ffmpeg >/dev/null || ! command -v blender >/dev/null \
	    || ! command -v godot3 >/dev/null || ! command -v xvfb-run >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chromium ffmpeg blender python3-numpy godot3 xvfb xauth >/dev/null; \
	  else echo "note: chromium/ffmpeg/blender/godot3/xvfb missing and not root: those client tests will be skipped"; fi; \
	fi
	touch $@

migrate: setup
	$(VENV)/bin/vrhub migrate

serve: migrate
	$(VENV)/bin/vrhub serve --host $(HOST) --port $(PORT)

test: setup system-deps
	$(VENV)/bin/vrhub migrate
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check vrhub tests bench plugins migrations scripts
	$(VENV)/bin/ruff format --check vrhub tests bench plugins migrations scripts

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) node_modules var
