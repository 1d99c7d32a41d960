# Two commands for a fresh Debian/Ubuntu machine with Python 3.11:
#   make demo   set up, then soundtrack sample videos with the tiny models
#   make test   set up (Chromium too, for the report's browser test, and espeak-ng, which
#               speaks the voice-overs of the speech-detection tests), then run the test suite
# Set-up is idempotent: ffmpeg from apt if missing, a virtual environment in .venv,
# the package with the exact versions in constraints.txt. On a CUDA machine pass
# TORCH_INDEX=https://download.pytorch.org/whl/cu128 (see README).

PYTHON ?= python3
VENV ?= .venv
TORCH_INDEX ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP := $(VENV)/.cotvtm-installed
PIP := $(VENV)/bin/python -m pip
TORCH_ARGS := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))

.PHONY: demo test setup ffmpeg chromium espeak-ng clean-venv

demo: setup
	$(VENV)/bin/cotvtm demo $(ARGS)

test: setup chromium espeak-ng
	$(VENV)/bin/python -m pytest $(ARGS)

setup: ffmpeg $(STAMP)

ffmpeg:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq ffmpeg; }

chromium:  # the report's browser test draws the page in it
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

espeak-ng:  # the speech-detection tests make their voice-overs with it
	@command -v espeak-ng >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq espeak-ng; }

$(STAMP): pyproject.toml constraints.txt
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt $(TORCH_ARGS) torch
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
