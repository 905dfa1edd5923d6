# botwarden: two commands do all set-up on a fresh machine.
#   make run   venv, pinned install, render supervisord.conf, start supervisord with the stack
#   make test  same bootstrap, then lint, types, playbook validation and the whole test suite
#
# Installs are reproducible: every package, direct and transitive, comes at the exact version and
# hash written in requirements.lock (made by `uv pip compile`, refreshed with `make lock`).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
STAMP  := $(VENV)/.installed
UV     := $(BIN)/uv
# uv installs the lock; its own version is the one the lock pins (written once, there).
UV_VERSION = $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' $(LOCK))
# Never let uv fetch a Python of its own: the venv's interpreter is the machine's.
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint stop status bench reliability docs venv lock system-test-deps browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Exactly the lock (packages not in it are removed), then the project itself, editable, without
# resolving anything (its build backend comes from the lock too). Bytecode is compiled at install
# (uv does not by default): else the five programs' first start compiles every library at once,
# and a cold paper exchange on two loaded cores took 34-43 s to answer.
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

# Refresh the lock to the newest releases pyproject.toml allows (then run `make test`).
# One lock for every platform and Python >= 3.11 (--universal), with hashes.
lock: | $(BIN)/python
	test -x $(UV) || $(BIN)/pip install --quiet uv
	$(UV) pip compile pyproject.toml --extra test --extra dev --generate-hashes --universal \
		--python-version 3.11 --upgrade --quiet -o $(LOCK)

run: $(STAMP)
	$(BIN)/agent stack up

stop: $(STAMP)
	$(BIN)/agent stack down

status: $(STAMP)
	$(BIN)/supervisorctl -c var/supervisord.conf status

# System packages the suite needs: promtool (Debian `prometheus`) checks both /metrics pages.
system-test-deps:
	@command -v promtool >/dev/null || { \
		echo "installing promtool (Debian package prometheus)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; }; }

lint: $(STAMP)
	$(BIN)/ruff check agent bot botwarden tests benchmarks
	$(BIN)/mypy agent bot botwarden

# The end-to-end suites mostly wait on real processes (supervisord, the bot, the agent), so four
# pytest-xdist workers keep two cores busy; every test owns its ports and directories.
# loadgroup: tests of one xdist_group share a worker (the fault scenarios share one stack).
TEST_WORKERS ?= 4

# Bytecode may be written (into the ignored __pycache__/ directories): with PYTHONDONTWRITEBYTECODE
# set, as container images often set it, every worker rewrote and compiled every test module on
# every run (pytest's assertion rewriting: ~9 CPU-s a worker; ~4 once cached).
test: $(STAMP) system-test-deps browser lint
	$(BIN)/agent validate playbooks
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup \
		--durations=20

# Debian's headless browser and its driver, for the web page's browser test (tests/web).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		echo "installing chromium and chromium-driver (Debian packages)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; }; }

# Peers for the side-by-side figures: Monit (Debian package) and superlance (PyPI).
bench: $(STAMP)
	command -v monit >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q monit)
	$(BIN)/pip install --quiet superlance
	$(BIN)/python -m benchmarks

# Every fault scenario of tests/faults, 20 runs each with random timings (RELIABILITY_RUNS), or the
# names in RELIABILITY_SCENARIOS: writes docs/reliability.md. As root the agent database gets a
# size-limited tmpfs (the full-disk scenario; skipped otherwise). make test runs only a few
# scenarios once (tests/faults/test_faults.py DEFAULT).
reliability: $(STAMP)
	$(BIN)/python -m benchmarks.reliability

docs: $(STAMP)
	$(BIN)/python -m agent.modules > docs/modules.md

clean:
	-$(BIN)/agent stack down
	rm -rf var
