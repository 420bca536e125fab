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

.PHONY: help venv lock docs deploy build run stop logs rebuild clean images docker docker-start \
        postgresql-server chromium test lint test-app test-extraction test-browser test-deploy test-images \
        test-molecule test-cluster test-docker test-stack test-ops test-edge test-external-db isolation-snapshot isolation-check \
        bench-api bench-deploy bench-backup bench-tls eval-extraction backup restore rollback status

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-19s %s\n", $$1, $$2}'

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV) || { apt-get update -q && apt-get install -y -q python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/activate ## Create the controller virtualenv (Ansible, test and lint tools)

# ---- deployment (the seed's make commands) -------------------------------------------------
deploy: venv ## Deploy or update the whole stack (builds what changed)
	$(PLAYBOOK) site.yml $(ANSIBLE_ARGS)

build: deploy ## Same as deploy: build changed images and (re)start what changed

run: venv ## Start the existing containers without building
	$(PLAYBOOK) playbooks/run.yml $(ANSIBLE_ARGS)

stop: venv ## Stop the containers (data stays in the volumes)
	$(PLAYBOOK) playbooks/stop.yml $(ANSIBLE_ARGS)

logs: venv ## Show recent API logs (LINES=500 for more)
	$(PLAYBOOK) playbooks/logs.yml $(if $(LINES),-e medical_notes_logs_lines=$(LINES)) $(ANSIBLE_ARGS)

# Full setting names: extra-vars beat the inventory's group_vars, so these always take effect.
rebuild: venv ## Re-seed and re-index (medical_notes_force_init=true); user documents are kept
	$(PLAYBOOK) site.yml -e medical_notes_force_init=true $(ANSIBLE_ARGS)

clean: venv ## Remove the stack's labelled containers, network, volumes, image (CONFIRM=yes: deletes patient data)
	$(PLAYBOOK) playbooks/clean.yml -e medical_notes_clean_confirm=$(CONFIRM) $(ANSIBLE_ARGS)

images: venv ## Make sure the base images exist (pull, or build from the Debian mirror)
	$(PLAYBOOK) playbooks/images.yml $(ANSIBLE_ARGS)

docker: venv ## Install and start the Docker engine on the target (our docker_engine role)
	$(PLAYBOOK) playbooks/docker.yml $(ANSIBLE_ARGS)

docker-start: venv ## Start the installed Docker daemon if it is not running (no install, no configuration)
	$(PLAYBOOK) playbooks/docker-start.yml $(ANSIBLE_ARGS)

# ---- backups, restore, rollback (docs/backup-and-restore.md) -------------------------------
backup: venv ## Back up the database now (pg_dump into <base_dir>/backups, with .sha256)
	$(PLAYBOOK) playbooks/backup.yml $(ANSIBLE_ARGS)

restore: venv ## Restore BACKUP=<path> (needs CONFIRM=yes; the current database is kept aside)
	$(PLAYBOOK) playbooks/restore.yml -e medical_notes_restore_file='$(BACKUP)' \
	  -e medical_notes_restore_confirm=$(CONFIRM) $(ANSIBLE_ARGS)

rollback: venv ## Run the API on the previous image again
	$(PLAYBOOK) playbooks/rollback.yml $(ANSIBLE_ARGS)

status: venv ## Containers, API images and the time of the last good backup
	$(PLAYBOOK) playbooks/status.yml $(ANSIBLE_ARGS)

# ---- tests ---------------------------------------------------------------------------------
# The isolation proof runs around the rest: snapshot of the default stack first, check last.
TEST_SUITE := test-app test-extraction test-browser test-deploy test-images test-stack test-ops test-edge test-molecule \
              test-cluster test-external-db
test: venv lint test-docker isolation-snapshot $(TEST_SUITE) isolation-check ## Run every test (what CI runs)

lint: venv ## ruff, yamllint, ansible-lint (production), hadolint, shellcheck, docs/variables.md current
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/hadolint Dockerfile roles/base_images/files/*/Dockerfile
	$(BIN)/shellcheck docker/*.sh roles/base_images/files/*/*.sh roles/medical_notes/files/*.sh scripts/*.sh .ci/run
	$(BIN)/python scripts/variables_doc.py --check

# Every runtime dependency, transitive ones included, pinned with the sha256 of each file; the image
# installs it with --require-hashes. Run after changing requirements.txt.
lock: venv ## Regenerate requirements.lock and requirements-terminology.lock (pins with hashes)
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  --no-emit-find-links --output-file requirements.lock requirements.txt
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  --no-emit-find-links --output-file requirements-terminology.lock requirements-terminology.txt

docs: venv ## Regenerate docs/variables.md from the roles' defaults
	$(BIN)/python scripts/variables_doc.py

test-app: venv postgresql-server ## Service tests against a real PostgreSQL and fake LLM servers
	$(BIN)/pytest tests/app

test-extraction: venv ## Extraction scores on the frozen test split (fails below the issue's thresholds)
	$(BIN)/pytest tests/extraction

test-browser: venv postgresql-server chromium ## API docs and the console in headless Chromium (Playwright)
	$(BIN)/pytest tests/browser

test-deploy: venv ## Wrong deployment settings fail before anything changes
	$(BIN)/pytest tests/deploy

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

eval-extraction: venv ## Print extraction scores (P/R/F1, codes, FHIR validity, latency): test and dev splits
	$(BIN)/python scripts/eval_extraction.py --split test
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
