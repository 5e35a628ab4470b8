# Two entry points a new user needs: `make demo` and `make test`.
# Both create their own virtual environment in .venv: the demo installs only
# the engine (scripts/demo.sh runs the CLI: no service, no database server, no
# MLflow); the tests install every extra they exercise (the service, the
# PostgreSQL driver, MLflow for the registry-webhook test, OpenTelemetry for
# the tracing tests).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORE   := $(VENV)/.installed-core
EXTRAS := .[test,service,postgres,integration,evidence,otel,pages]

.PHONY: demo test bench lint clean

# Compile the project's bytecode once: where PYTHONDONTWRITEBYTECODE is set
# every command would otherwise recompile every module it imports.
define install
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '$(1)'
	$(BIN)/python -m compileall -q policyengine audit
endef

$(CORE): pyproject.toml
	$(call install,.)
	touch $(CORE)

$(STAMP): pyproject.toml
	$(call install,$(EXTRAS))
	touch $(CORE) $(STAMP)

demo: $(CORE)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q
	# Once more in shadow mode: every decision of the engine and pack tests is
	# made on both CEL runtimes, and any difference fails the test.
	POLICYENGINE_ENGINE=shadow $(BIN)/python -m pytest -q tests/policyengine

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .policyengine
