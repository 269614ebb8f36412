# phix: two commands matter. `make run` starts the platform with demo data; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck system-deps bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "phix needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

# Debian packages the DICOM tests and the reading sites need (DCMTK, Orthanc). Installed when
# missing and we are root; otherwise the tests that need them skip with a loud reason.
system-deps:
	@missing=""; \
	command -v storescu >/dev/null 2>&1 || missing="$$missing dcmtk"; \
	command -v Orthanc >/dev/null 2>&1 || missing="$$missing orthanc orthanc-dicomweb"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null \
	      || echo "WARNING: could not install$$missing; DICOM peer tests will skip"; \
	  else \
	    echo "WARNING: not root or no apt-get; missing$$missing; DICOM peer tests will skip"; \
	  fi; \
	fi

# The FHIR API (with demo data on the first start) and the DICOM gateway; Ctrl-C stops both.
run: $(STAMP)
	@$(BIN)/phix serve --demo & api=$$!; \
	trap 'kill $$api 2>/dev/null; wait $$api' EXIT INT TERM; \
	$(BIN)/phix gateway --wait-for http://127.0.0.1:8080/readyz

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

test: $(STAMP) system-deps lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/crud.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/mpi.py
	$(BIN)/python bench/dicom.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
