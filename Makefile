# catgen: two commands do all the set-up on a fresh machine (Python 3.10+ is all it needs).
#   make test   create .venv, install the pinned stack and catgen, run the test suite
#   make demo   the main job on SynthScenes (see README)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.catgen-installed
PYTEST_ARGS ?= -n 2

.PHONY: install test demo benchmark clean

$(STAMP): requirements/runtime.txt requirements/optional.txt requirements/tests.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -r requirements/runtime.txt -r requirements/optional.txt -r requirements/tests.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python tools/demo.py

clean:
	rm -rf $(VENV) build *.egg-info
