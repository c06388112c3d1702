# One-command entry points for a fresh Debian 12 machine; the work is done by
# scripts/dev.sh (run `scripts/dev.sh help` for its smaller steps).
.DEFAULT_GOAL := help
.PHONY: help run test bench stop test-citus

# Extra pytest arguments: make test ARGS="-k ledger -x"
ARGS ?=

help:
	@echo "make run   set up everything, load the demo county and serve on 127.0.0.1:8000"
	@echo "make test  set up everything and run the test suite (pytest arguments: ARGS=...)"
	@echo "make bench the request path side by side: wrk on each route, pgbench on its SQL (ARGS=...)"
	@echo "make stop  stop the server and the project-local PostgreSQL"
	@echo "make test-citus  build Citus (CITUS_SRC=its source tarball), start a coordinator and two workers, run tests/api and tests/integration on them"

run:
	@bash scripts/dev.sh run

test:
	@bash scripts/dev.sh test $(ARGS)

bench:
	@bash scripts/dev.sh bench $(ARGS)

stop:
	@bash scripts/dev.sh stop

test-citus:
	@bash scripts/citus.sh test $(ARGS)
