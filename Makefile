# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/pip install -c constraints.txt
EXTRAS ?= llamacpp,ray,dev
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# llama.cpp's default build uses every instruction of the CPU it is built on (-march=native); on CPUs with AMX
# tiles that build dies with a general protection fault in a VM, and pip's cache hands it to other CPUs. We build a
# portable AVX2 wheel once per machine instead, kept outside pip's cache.
LLAMA_WHEELS ?= $(HOME)/.cache/reasonlab/wheels/llama-cpp-portable
LLAMA_CMAKE_ARGS := $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)

.PHONY: demo test venv lint bench sandbox-tools browser-tools

$(VENV)/.installed: pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) -q --upgrade pip
	# torch first, pinned to the CPU build on this disk; everything else under the same constraints
	$(PIP) -q torch==2.13.0
	@ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { echo "building llama-cpp-python (portable, ~6 min)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(VENV)/bin/pip wheel -q -c constraints.txt --no-deps --no-cache-dir \
	  llama-cpp-python -w $(LLAMA_WHEELS); }
	$(PIP) -q --find-links $(LLAMA_WHEELS) -e ".[$(EXTRAS)]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/reasonlab demo

# the sandbox's first layer is bubblewrap (Debian package); install it where we may, else its tests skip
sandbox-tools:
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1; } || \
	  echo "note: bubblewrap not installed; sandbox tests that need it will be skipped"

# the report's browser test drives Debian's chromium through chromedriver; installed the same way, else it skips
browser-tools:
	@command -v chromedriver >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1; } || \
	  echo "note: chromium/chromedriver not installed; the report's browser test will be skipped"

# the suite in TEST_WORKERS processes (pytest-xdist), one test file to a worker so a file's shared fixtures are
# built once; tests/conftest.py splits the cores between the workers. Serially the suite took 24 min on a 2-vCPU
# AMD EPYC (Zen 3) and kept about one core busy; in two workers 14.5 min (RESULTS.md). TEST_WORKERS=0: serial.
# The browser test's screenshot of the report is kept in runs/ci-artifacts.
TEST_WORKERS ?= 2
test: venv sandbox-tools browser-tools
	REASONLAB_ARTIFACTS=runs/ci-artifacts $(VENV)/bin/python -m pytest tests -n $(TEST_WORKERS) --dist loadfile

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks

bench: venv
	$(VENV)/bin/python benchmarks/llm_throughput.py
