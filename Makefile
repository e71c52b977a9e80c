# Shoal: two commands set everything up on a fresh machine -- `make up` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PORT    ?= 7000

.PHONY: up down test test-fast lint-imports bench chaos clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

## Start a local cluster: 3 primaries + 3 replicas on 127.0.0.1:$(PORT)-$(PORT)+5, data under var/.
up: $(STAMP)
	$(BIN)/shoal up --primaries 3 --replicas-per-primary 1 --port $(PORT)

## Stop what `make up` started (by PID).
down: $(STAMP)
	$(BIN)/shoal down

## The whole test suite, plus the import-direction contracts.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint-imports: $(STAMP)
	$(BIN)/lint-imports

## Shoal vs redis-server with redis-benchmark; writes bench/results/*.json.
bench: $(STAMP)
	$(BIN)/python -m bench.run_bench

## The whole chaos catalogue, Shoal and real Redis: HTML reports and the results table
## (chaos-reports/catalogue.md: scenario, engine, verdict, lost writes, availability, failover time). Long: ~1 h.
chaos: $(STAMP)
	$(BIN)/python -m jepsen_like catalogue --time 30 --report chaos-reports --table chaos-reports/catalogue.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis var
