# Hushpost: `make run` to try it, `make test` to prove it, `make bench` to measure it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/hushpost
export HUSHPOST_DATA_DIR ?= $(CURDIR)/var

.PHONY: run install install-test browser deploy-tools faults nginx saml services spamassassin test test-sqlite test-postgres lint screenshots bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

## make run: install, migrate SQLite under ./var, create the demo organisation, serve.
run: install
	HUSHPOST_MODE=development $(BIN)/hushpost demo

## Chromium from Debian's packages; Playwright drives it (its own download cannot work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Chromium (Debian package)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core) >/dev/null; }

## systemd-analyze checks deploy/systemd/ (tests/test_deploy.py); Debian's systemd package has it.
deploy-tools:
	@command -v systemd-analyze >/dev/null 2>&1 || { \
	  echo "Installing systemd-analyze (Debian package systemd)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd) >/dev/null; }

## libfaketime from Debian's packages: the fault tests run one worker with its clock ten minutes ahead.
faults:
	@test -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 || { \
	  echo "Installing libfaketime (Debian package faketime)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime) >/dev/null; }

## nginx from Debian's packages: tests/browser/test_nginx.py runs deploy/nginx.example.conf in it,
## in front of `hushpost serve` (PostgreSQL run only).
nginx:
	@test -x /usr/sbin/nginx || { \
	  echo "Installing nginx (Debian package nginx)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >/dev/null; }

## SpamAssassin from Debian's packages: tests/test_spam_score.py scores every kind of e-mail
## Hushpost sends with it (PostgreSQL run only).
spamassassin:
	@test -x /usr/bin/spamassassin || { \
	  echo "Installing SpamAssassin (Debian package spamassassin)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spamassassin) >/dev/null; }

## xmlsec1 from Debian's packages: pysaml2 checks (and the test identity provider makes) SAML
## signatures with it; a portal whose organisations use SAML needs it at run time too.
saml:
	@command -v xmlsec1 >/dev/null 2>&1 || { \
	  echo "Installing xmlsec1 (Debian package xmlsec1)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1) >/dev/null; }

## PostgreSQL must be up for the production-database half of the suite.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  echo "Starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }

lint: install-test
	$(BIN)/ruff check hushpost tests bench

test-sqlite: install-test browser deploy-tools saml services
	$(BIN)/pytest -q -p no:cacheprovider

test-postgres: install-test browser deploy-tools faults nginx saml services spamassassin
	HUSHPOST_DATABASE_URL=$(PG_URL) $(BIN)/pytest -q -p no:cacheprovider

## make test: lint, then the whole suite on SQLite and again on PostgreSQL; the fault tests
## (tests/faults/) only in the PostgreSQL run, on a PostgreSQL server of their own, and nginx in
## front of Hushpost (tests/browser/test_nginx.py) and the spam scores (tests/test_spam_score.py)
## only there too.
test: lint test-sqlite test-postgres

## The README's screenshots, taken by the browser tests.
screenshots: install-test browser saml
	HUSHPOST_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q -p no:cacheprovider tests/browser

bench: install-test services
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache
