# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip install -c constraints.txt
EXTRAS ?= llamacpp,dev
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test venv lint bench sandbox-tools

$(VENV)/.installed: pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) -q --upgrade pip
	# torch first, pinned to the CPU build on this disk; everything else under the same constraints
	$(PIP) -q torch==2.13.0
	$(PIP) -q -e ".[$(EXTRAS)]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/reasonlab demo

# the sandbox's first layer is bubblewrap (Debian package); install it where we may, else its tests skip
sandbox-tools:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1; } || \
	  echo "note: bubblewrap not installed; sandbox tests that need it will be skipped"

test: venv sandbox-tools
	$(VENV)/bin/python -m pytest tests

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks

bench: venv
	$(VENV)/bin/python benchmarks/llm_throughput.py
