# Two entry points, both self-installing into .venv:
#   make demo   runs the kit end to end on bundled data
#   make test   runs the whole test suite
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.edgewatch-installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,edge,ops,demo,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgewatch demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) tools/bench_cmapss.py

clean:
	rm -rf demo-out .pytest_cache
