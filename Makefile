# medical-notes: one entry point for deploying, operating and testing the stack.
# Every target that needs tools first builds the controller virtualenv (.venv).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLAYBOOK := $(BIN)/ansible-playbook
ANSIBLE_ARGS ?=
CONFIRM ?= no
LINES ?=
BACKUP ?=
# Everything `make test` deploys uses this inventory (a test stack on this machine, never
# inventory/hosts.yml); tests/stack, tests/deploy and molecule read it as well.
TEST_INVENTORY := tests/inventory/hosts.yml
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv venv-deploy lock docs deploy build run stop logs rebuild clean images docker docker-start \
        postgresql-server chromium test lint test-app test-extraction test-browser test-deploy test-images \
        test-molecule test-cluster test-docker test-fresh-host fresh-host-clean test-stack test-ops test-edge test-external-db isolation-snapshot isolation-check \
        bench-api bench-deploy bench-backup bench-tls eval-extraction backup restore rollback status

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-19s %s\n", $$1, $$2}'

# Two sets of tools in one virtualenv, each installed from its lock (every file pinned with its
# sha256, --require-hashes): the deploy tools (Ansible, the Docker SDK) for the deployment and
# operations targets, and on top of them the test and lint tools for the test targets. --no-compile:
# the ~30,000 files of the collections are compiled when they are first imported, if ever.
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check --no-compile --require-hashes

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { apt-get update -q && apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); }

$(VENV)/.deploy-tools: requirements-deploy.lock | $(BIN)/python
	$(PIP_INSTALL) -r requirements-deploy.lock
	touch $@

$(VENV)/.dev-tools: requirements-dev.lock $(VENV)/.deploy-tools
	$(PIP_INSTALL) -r requirements-dev.lock
	touch $@

venv-deploy: $(VENV)/.deploy-tools ## Create the controller virtualenv with the deploy tools only (Ansible, Docker SDK)

venv: $(VENV)/.dev-tools ## Create the controller virtualenv with the deploy, test and lint tools

# FAST=1: Mitogen's connection layer through the project's strategy plugin (plugins/strategy), which
# changes private parts of Ansible and Mitogen; opt-in, for re-runs (docs/performance.md). The default
# is Ansible's own linear strategy.
ifeq ($(FAST),1)
export ANSIBLE_STRATEGY_PLUGINS := $(CURDIR)/plugins/strategy
export ANSIBLE_STRATEGY := mitogen_linear
endif

# ---- deployment (the seed's make commands) -------------------------------------------------
deploy: venv-deploy ## Deploy or update the whole stack (builds what changed)
	$(PLAYBOOK) site.yml $(ANSIBLE_ARGS)

build: deploy ## Same as deploy: build changed images and (re)start what changed

run: venv-deploy ## Start the existing containers without building
	$(PLAYBOOK) playbooks/run.yml $(ANSIBLE_ARGS)

stop: venv-deploy ## Stop the containers (data stays in the volumes)
	$(PLAYBOOK) playbooks/stop.yml $(ANSIBLE_ARGS)

logs: venv-deploy ## Show recent API logs (LINES=500 for more)
	$(PLAYBOOK) playbooks/logs.yml $(if $(LINES),-e medical_notes_logs_lines=$(LINES)) $(ANSIBLE_ARGS)

# Full setting names: extra-vars beat the inventory's group_vars, so these always take effect.
rebuild: venv-deploy ## Re-seed and re-index (medical_notes_force_init=true); user documents are kept
	$(PLAYBOOK) site.yml -e medical_notes_force_init=true $(ANSIBLE_ARGS)

clean: venv-deploy ## Remove the stack's labelled containers, network, volumes, image (CONFIRM=yes: deletes patient data)
	$(PLAYBOOK) playbooks/clean.yml -e medical_notes_clean_confirm=$(CONFIRM) $(ANSIBLE_ARGS)

images: venv-deploy ## Make sure the base images exist (pull, or build from the Debian mirror)
	$(PLAYBOOK) playbooks/images.yml $(ANSIBLE_ARGS)

docker: venv-deploy ## Install and start the Docker engine on the target (our docker_engine role)
	$(PLAYBOOK) playbooks/docker.yml $(ANSIBLE_ARGS)

docker-start: venv-deploy ## Start the installed Docker daemon if it is not running (no install, no configuration)
	$(PLAYBOOK) playbooks/docker-start.yml $(ANSIBLE_ARGS)

# ---- backups, restore, rollback (docs/backup-and-restore.md) -------------------------------
backup: venv-deploy ## Back up the database now (pg_dump into <base_dir>/backups, with .sha256)
	$(PLAYBOOK) playbooks/backup.yml $(ANSIBLE_ARGS)

restore: venv-deploy ## Restore BACKUP=<path> (needs CONFIRM=yes; the current database is kept aside)
	$(PLAYBOOK) playbooks/restore.yml -e medical_notes_restore_file='$(BACKUP)' \
	  -e medical_notes_restore_confirm=$(CONFIRM) $(ANSIBLE_ARGS)

rollback: venv-deploy ## Run the API on the previous image again
	$(PLAYBOOK) playbooks/rollback.yml $(ANSIBLE_ARGS)

status: venv-deploy ## Containers, API images and the time of the last good backup
	$(PLAYBOOK) playbooks/status.yml $(ANSIBLE_ARGS)

# ---- tests ---------------------------------------------------------------------------------
# The stages of `make test`, each timed (scripts/test_stages.sh prints the table): first the README's
# deploy on this machine with Docker removed (CI only: test-fresh-host), then the isolation proof
# around the rest (snapshot of the default stack first, check last), and last the removal of the
# fresh-host stage's stack. "a,b/c,d" runs two lanes at the same time (a then b, c then d) on the two
# cores: only suites that share nothing run side by side. The suites without Docker run beside the
# image and lifecycle tests (those rebuild base images and stop the daemon, so no other Docker suite
# runs then); the stacks of ops, molecule and the external database (mn_bkp, mn_test, mn_ext) beside
# those of edge and the cluster (mn_tls, mn_cl).
TEST_STAGES := lint test-fresh-host test-docker isolation-snapshot \
               test-app,test-extraction,test-browser/test-deploy,test-images,test-stack \
               test-ops,test-molecule,test-external-db/test-edge,test-cluster \
               isolation-check fresh-host-clean
test: venv ## Run every test (what CI runs), with a table of how long each stage took
	scripts/test_stages.sh $(TEST_STAGES)

lint: venv ## ruff, yamllint, ansible-lint (production), hadolint, shellcheck, docs/variables.md current
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/hadolint Dockerfile roles/base_images/files/*/Dockerfile
	$(BIN)/shellcheck docker/*.sh roles/base_images/files/*/*.sh roles/medical_notes/files/*.sh scripts/*.sh .ci/run
	$(BIN)/python scripts/variables_doc.py --check

# Every dependency, transitive ones included, pinned with the sha256 of each file: the image installs
# requirements.lock with --require-hashes, the controller's virtualenv the deploy and dev locks. The
# deploy and dev locks are compiled against requirements.lock, so a package they share with the
# image has the image's version. Run after changing any requirements*.txt.
LOCK := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
  --no-emit-find-links
lock: venv ## Regenerate the lock files (requirements*.lock: pins with hashes) from requirements*.txt
	$(LOCK) --output-file requirements.lock requirements.txt
	$(LOCK) --output-file requirements-terminology.lock requirements-terminology.txt
	$(LOCK) --output-file requirements-deploy.lock requirements-deploy.txt
	$(LOCK) --output-file requirements-dev.lock requirements-dev.txt

docs: venv ## Regenerate docs/variables.md from the roles' defaults
	$(BIN)/python scripts/variables_doc.py

test-app: venv postgresql-server ## Service tests against a real PostgreSQL and fake LLM servers
	$(BIN)/pytest tests/app

test-extraction: venv ## Extraction on the frozen blind split (fails below its floors) and the first split
	$(BIN)/pytest tests/extraction

test-browser: venv postgresql-server chromium ## API docs and the console in headless Chromium (Playwright)
	$(BIN)/pytest tests/browser

test-deploy: venv ## Wrong deployment settings fail before anything changes
	$(BIN)/pytest tests/deploy

test-fresh-host: venv ## CI only: remove Docker, then the README's deploy from a fresh clone (tests/fresh_host)
	$(BIN)/pytest -s tests/fresh_host/test_fresh_host.py::test_the_readme_deploy_on_a_host_without_docker

fresh-host-clean: venv ## Remove the default stack that test-fresh-host deployed (after the isolation check)
	$(BIN)/pytest tests/fresh_host/test_fresh_host.py::test_remove_the_fresh_host_stack

test-docker: venv ## Install and start the Docker engine for the tests (test inventory)
	$(PLAYBOOK) -i $(TEST_INVENTORY) playbooks/docker.yml

test-images: venv test-docker ## Build the base and app images and test the containers
	$(BIN)/pytest tests/images

test-stack: venv test-docker ## Test stack lifecycle: check mode, settings removal, daemon restart, destroy
	$(BIN)/pytest tests/stack

test-molecule: venv test-docker ## molecule test: converge, idempotence, verify, destroy (test stack)
	$(BIN)/molecule test

# The simulated cluster of inventory/local-cluster.yml as a test deployment (mn_cl, ports +100).
test-cluster: venv test-docker ## molecule cluster scenario: database, two APIs, load balancer on this machine
	$(BIN)/molecule test -s cluster

test-ops: venv test-docker ## Backup, restore, schedule and rollback on a stack of their own (mn_bkp_*)
	$(BIN)/pytest tests/ops

isolation-snapshot: venv test-docker ## Record the default stack (deploy a marked one if there is none)
	$(BIN)/pytest tests/isolation/test_default_stack_untouched.py::test_snapshot_of_the_default_stack

isolation-check: venv ## The default stack is untouched after the suite (removes it only if marked as ours)
	$(BIN)/pytest tests/isolation/test_default_stack_untouched.py::test_default_stack_is_untouched

# Debian's Chromium: Playwright drives it as it is (it never downloads a browser of its own).
chromium:
	test -x /usr/bin/chromium || { apt-get update -q && apt-get install -y -q chromium; }

# TLS, secrets as files, PostgreSQL posture, clients and Vault on a stack of their own (mn_tls,
# HTTPS on 127.0.0.1:18443, /opt/mn-tls).
test-edge: venv test-docker ## TLS proxy, secrets out of environments, PostgreSQL hardening, clients, Vault
	$(BIN)/pytest tests/edge

test-external-db: venv test-docker postgresql-server ## The stack on an external PostgreSQL (TLS, verify-full), stack mn_ext
	$(BIN)/pytest tests/external_db

# The tests start their own PostgreSQL 15 server (as the postgres user) from Debian's binaries.
postgresql-server:
	test -x /usr/lib/postgresql/15/bin/initdb || { apt-get update -q && apt-get install -y -q postgresql-15; }

# ---- benchmarks (print numbers; not tests) -------------------------------------------------
bench-api: venv postgresql-server ## Requests/s and latency of the API with one worker, index build time
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	$(BIN)/python scripts/bench_api.py

eval-extraction: venv ## Print extraction scores against issue #19's targets: the blind split, then dev
	$(BIN)/python scripts/eval_extraction.py --split blind
	$(BIN)/python scripts/eval_extraction.py --split dev

# Its own stack (tests/bench: mn_bench on 127.0.0.1:18470), removed again at the end.
bench-deploy: venv test-docker ## Cold deploy, no-op re-run, force_init, restart; published port vs container address
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	scripts/bench_deploy.sh

bench-backup: venv docker ## Backup/restore time and size for 10k and 100k notes, API req/s during a backup
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	$(BIN)/python scripts/bench_backup.py

bench-tls: venv test-docker ## HTTPS (TLS proxy, uvicorn TLS) vs plain HTTP, GET /documents/{id}, keep-alive
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	$(BIN)/python scripts/bench_tls.py
