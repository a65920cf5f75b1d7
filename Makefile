# Two commands for a fresh clone: `make run` starts the app, `make test` runs every test.
# Both create .venv and install the project into it on first use (and again when
# pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
# Where `make run` listens. Beyond 127.0.0.1 the app needs sign-in ([auth] in
# .streamlit/secrets.toml) or METERING_ALLOW_NO_SIGN_IN=1 (README, "Sign-in and roles").
HOST ?= 127.0.0.1

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/streamlit run app.py --server.address $(HOST)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[test,bench]'
	$(VENV)/bin/python bench/run.py --events 1000000

clean:
	rm -rf $(VENV)
