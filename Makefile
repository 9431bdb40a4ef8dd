# Two commands do all the set-up on a fresh machine:
#   make generate   -> builds .venv if needed, then writes a clip from the bundled Shapes pipeline
#   make test       -> builds .venv if needed, then runs the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROMPT ?= a blue square moving up
OUT ?= outputs/demo.mp4

.PHONY: venv generate test test-slow samples test-tools clean

# The CPU torch wheel goes in first so that nothing later resolves `torch` to a CUDA build. This workplace's pip
# finds the CPU wheel on its own disk; elsewhere PyPI's Linux wheel is the CUDA one, and
# TORCH_INDEX=https://download.pytorch.org/whl/cpu asks PyTorch's CPU index for it instead.
TORCH_INDEX ?=
$(VENV)/.ready: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q --disable-pip-version-check -e ".[test]"
	touch $@

venv: $(VENV)/.ready

generate: $(VENV)/.ready
	$(BIN)/vidiff generate "$(PROMPT)" -o $(OUT)

# Real clips from Debian packages (opencv-doc, python3-imageio) for the I/O tests; skipped if apt is unavailable.
samples:
	bash tools/fetch_sample_videos.sh

# Headless Chromium for the report page test and WordNet for the shape-noun table test (Debian packages; those
# tests skip where apt is unavailable).
test-tools:
	bash tools/install_test_tools.sh

# Two workers, one file each at a time: most tests run on one thread (tests/conftest.py), so the second core
# would otherwise sit idle; whole files per worker keep module fixtures built once.
test: $(VENV)/.ready samples test-tools
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-slow: $(VENV)/.ready samples test-tools
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) outputs
