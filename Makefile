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
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv deploy build run stop logs rebuild clean images docker postgresql-server \
        test lint test-app test-deploy test-images test-molecule bench-api bench-deploy

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

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

logs: venv ## Show recent API logs
	$(PLAYBOOK) playbooks/logs.yml $(ANSIBLE_ARGS)

rebuild: venv ## Re-seed and re-index (force_init=true); user documents are kept
	$(PLAYBOOK) site.yml -e force_init=true $(ANSIBLE_ARGS)

clean: venv ## Remove containers, network, volumes and images (needs CONFIRM=yes: deletes patient data)
	$(PLAYBOOK) playbooks/clean.yml -e confirm=$(CONFIRM) $(ANSIBLE_ARGS)

images: venv ## Make sure the base images exist (pull, or build from the Debian mirror)
	$(PLAYBOOK) playbooks/images.yml $(ANSIBLE_ARGS)

docker: venv ## Install and start the Docker engine on the target (our docker_engine role)
	$(PLAYBOOK) playbooks/docker.yml $(ANSIBLE_ARGS)

# ---- tests ---------------------------------------------------------------------------------
test: venv lint test-app test-deploy docker test-images test-molecule ## Run every test (what CI runs)

lint: venv ## ruff, yamllint, ansible-lint (production), hadolint, shellcheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/hadolint Dockerfile roles/base_images/files/*/Dockerfile
	$(BIN)/shellcheck docker/*.sh roles/base_images/files/*/*.sh scripts/*.sh .ci/run

test-app: venv postgresql-server ## Service tests against a real PostgreSQL and fake LLM servers
	$(BIN)/pytest tests/app

test-deploy: venv ## Wrong deployment settings fail before anything changes
	$(BIN)/pytest tests/deploy

test-images: venv docker ## Build the base and app images and test the containers
	$(BIN)/pytest tests/images

test-molecule: venv docker ## molecule test: converge, idempotence, verify, destroy
	$(BIN)/molecule test

# TLS, secrets as files, PostgreSQL posture, clients and Vault on a stack of their own (mn_tls,
# HTTPS on 127.0.0.1:18443, /opt/mn-tls); the coordinator adds it to `test` after `docker`.
.PHONY: test-edge bench-tls
test-edge: venv docker ## TLS proxy, secrets out of environments, PostgreSQL hardening, clients, Vault
	$(BIN)/pytest tests/edge

# The tests start their own PostgreSQL 15 server (as the postgres user) from Debian's binaries.
postgresql-server:
	test -x /usr/lib/postgresql/15/bin/initdb || { apt-get update -q && apt-get install -y -q postgresql-15; }

# ---- benchmarks (print numbers; not tests) -------------------------------------------------
bench-api: venv postgresql-server ## Requests/s and latency of the API with one worker, index build time
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	$(BIN)/python scripts/bench_api.py

bench-deploy: venv ## Cold deploy, no-op re-run, force_init and restart-to-healthy times
	scripts/bench_deploy.sh

bench-tls: venv docker ## HTTPS (TLS proxy, uvicorn TLS) vs plain HTTP, GET /documents/{id}, keep-alive
	command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
	$(BIN)/python scripts/bench_tls.py
