VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
OUT ?= out

.PHONY: demo test lint clean benchmark

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,spark]'
	touch $(STAMP)

LTVKIT := $(VENV)/bin/ltvkit

# Train on the whole CDNOW master log and score it; segments are acquisition
# months, and examples/cdnow_spend.csv is an illustrative spend table.
demo: $(STAMP)
	$(LTVKIT) cdnow --kind master --out $(OUT)/cdnow_master.csv
	$(LTVKIT) train --transactions $(OUT)/cdnow_master.csv --time-unit W \
		--out models/cdnow_master --force
	$(LTVKIT) score --model models/cdnow_master \
		--transactions $(OUT)/cdnow_master.csv --segment-by acquisition-month \
		--spend examples/cdnow_spend.csv --out $(OUT)/cdnow_scored.csv \
		--segments-out $(OUT)/cdnow_segments.csv

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

benchmark: $(STAMP)
	$(PY) benchmarks/bench_models.py

clean:
	rm -rf $(VENV) $(OUT)
