# The refinery's two commands: `make demo` and `make test`. Each sets up what it
# needs on a fresh Debian machine with Python 3.11.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := salmon rsem chromium chromium-driver postgresql-15 postgresql-client-15
APT_STAMP := /var/tmp/.refinery-apt-installed

.PHONY: demo test lint format images system-packages clean help

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

demo: $(STAMP) system-packages ## Run the refinery's main job end to end on the embedded defaults
	rm -rf var/demo
	REFINERY_HOME=var/demo $(PY) manage.py demo

test: $(STAMP) system-packages ## Run the whole suite: on PostgreSQL, then the database tests on SQLite
	REFINERY_HOME=$$(mktemp -d /tmp/refinery-test-XXXXXX) $(PY) -m tests.run_suite

lint: $(STAMP) ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## ruff format and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

images: ## Build the Docker images; push them when REGISTRY is set (make images REGISTRY=... TAG=...)
	REGISTRY="$(REGISTRY)" TAG="$(TAG)" PUSH="$(PUSH)" bash docker/build.sh

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is needed: apt-get install python3.11 python3.11-venv"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian's salmon, rsem, Chromium and PostgreSQL; skipped when already present.
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

clean: ## Remove the embedded database, storage and logs (./var)
	rm -rf var
