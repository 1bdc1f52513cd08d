# Two entry points: `make demo` (the main job on the default task) and `make test`.
# Both create .venv if absent and install the package; on a machine without CUDA the CPU build of
# torch is installed first so that no multi-GB CUDA wheel is downloaded.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_CPU := torch==2.13.0

.PHONY: demo test install clean

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || { \
	  if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q torch; \
	  else $(PY) -m pip install -q $(TORCH_CPU); fi; }
	$(PY) -m pip install -q -e ".[dev,baselines]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/diffaif demo --overwrite

test: install
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) runs
