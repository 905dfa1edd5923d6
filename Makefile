# botwarden: two commands do all set-up on a fresh machine.
#   make run   venv, install, render supervisord.conf, start supervisord with the stack
#   make test  same bootstrap, then playbook validation, mypy and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test stop status bench docs venv clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/agent stack up

stop: $(STAMP)
	$(BIN)/agent stack down

status: $(STAMP)
	$(BIN)/supervisorctl -c var/supervisord.conf status

test: $(STAMP) browser
	$(BIN)/agent validate playbooks
	$(BIN)/mypy agent bot
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Debian's headless browser and its driver, for the web page's browser test (tests/web).
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver)

# Peers for the side-by-side figures: Monit (Debian package) and superlance (PyPI).
bench: $(STAMP)
	command -v monit >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q monit)
	$(BIN)/pip install --quiet superlance
	$(BIN)/python -m benchmarks

docs: $(STAMP)
	$(BIN)/python -m agent.modules > docs/modules.md

clean:
	-$(BIN)/agent stack down
	rm -rf var
