# Two commands for a fresh clone: `make run` starts the app, `make test` runs every test.
# Both create .venv and install the project into it on first use (and again when
# pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
# Where `make run` listens. Beyond 127.0.0.1 the app needs sign-in ([auth] in
# .streamlit/secrets.toml) or METERING_ALLOW_NO_SIGN_IN=1 (README, "Sign-in and roles").
HOST ?= 127.0.0.1

.PHONY: run test notebook bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/streamlit run app.py --server.address $(HOST)

test: $(STAMP)
	$(VENV)/bin/python -m pytest

# The example notebooks (notebooks/) in JupyterLab, or the classic Notebook; neither is a
# dependency of the project (the tests run the notebooks with nbclient and ipykernel alone).
notebook: $(STAMP)
	@if [ -x $(VENV)/bin/jupyter-lab ]; then $(VENV)/bin/jupyter lab notebooks/; \
	elif [ -x $(VENV)/bin/jupyter-notebook ]; then $(VENV)/bin/jupyter notebook notebooks/; \
	else echo "Jupyter is not installed in $(VENV). Install JupyterLab, then run make notebook again:"; \
	echo "  $(VENV)/bin/pip install jupyterlab"; exit 1; fi

bench: $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[test,bench]'
	$(VENV)/bin/python bench/run.py --events 1000000

clean:
	rm -rf $(VENV)
