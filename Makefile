# The two commands in README.md: `make run` (platform with demo data on SQLite) and
# `make test` (the whole suite on SQLite, PostgreSQL and Chromium). Both do all set-up.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 5000
export FLASK_APP := lms_core

.PHONY: run test install translations fonts lint mypy browser clean extract-messages worker

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,postgres,serve,demo]'
	@touch $(STAMP)

install: $(STAMP) translations fonts

# The CJK font embedded (as a subset) in every PDF the platform writes: demo documents,
# transcripts, reports (lms_core/pdf/fonts.py). Debian's fonts-wqy-microhei: Simplified
# Chinese and Latin in one TrueType face, Apache-2.0 or GPL-3+ with the font exception.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
fonts:
	@test -f $(CJK_FONT) || { \
	  echo "installing Debian's fonts-wqy-microhei (the CJK font embedded in generated PDFs)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; }
	@test -f $(CJK_FONT) || { echo "$(CJK_FONT) missing: apt-get install fonts-wqy-microhei" >&2; exit 1; }

translations: $(STAMP)
	@for d in lms_core/translations plugins/*/translations lrs/translations tests/plugins/*/translations; do \
	  [ -d $$d ] && $(BIN)/pybabel -q compile -d $$d || true; done

# The core catalogue holds lms_core, themes and lrs; each plugin with a translations/
# folder keeps its own catalogue (served through the lms_translation_dirs hook).
extract-messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o lms_core/translations/messages.pot --no-location --sort-output lms_core themes lrs
	$(BIN)/pybabel update -i lms_core/translations/messages.pot -d lms_core/translations --no-fuzzy-matching
	@for d in plugins/*/translations; do [ -d $$d ] || continue; p=$$(dirname $$d); \
	  $(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o $$d/messages.pot --no-location --sort-output $$p && \
	  { [ -f $$d/zh_Hans_CN/LC_MESSAGES/messages.po ] || $(BIN)/pybabel init -i $$d/messages.pot -d $$d -l zh_Hans_CN; } && \
	  $(BIN)/pybabel update -i $$d/messages.pot -d $$d --no-fuzzy-matching; done

# The demo runs with the embedded LRS (plugin "lrs", mounted at /xapi) receiving the
# platform's xAPI statements; plain HTTP on loopback, so no Secure cookie flag.
RUN_ENV := LMS_PLUGINS=$${LMS_PLUGINS-lrs,anti_idle,credit_bank} LMS_SESSION_COOKIE_SECURE=0 LMS_PLATFORM_URL=http://$(HOST):$(PORT) \
	LMS_XAPI_ENDPOINT=http://$(HOST):$(PORT)/xapi/

run: install
	@mkdir -p instance
	$(RUN_ENV) $(BIN)/flask db upgrade heads
	$(RUN_ENV) $(BIN)/flask lms xapi connect-embedded
	$(RUN_ENV) $(BIN)/flask lms demo
	@# Anti-idle first: the bank turns its day verdicts (a held day) into pending credit.
	$(RUN_ENV) sh -c 'case ",$$LMS_PLUGINS," in *,anti_idle,*) $(BIN)/flask lms anti-idle demo;; esac'
	@# Credit through the bank's real services (completions, a pending claim, a reversal, a transcript).
	$(RUN_ENV) sh -c 'case ",$$LMS_PLUGINS," in *,credit_bank,*) $(BIN)/flask lms credit demo;; esac'
	@# The dashboards open on the demo's figures (pages rebuild these rollups when they are old).
	$(RUN_ENV) $(BIN)/flask lms report refresh
	@echo ""
	@echo "  Platform: http://$(HOST):$(PORT)/   (Ctrl-C to stop; background jobs log to instance/worker.log)"
	@echo ""
	@# A worker beside the server picks up retries (e.g. xAPI statements queued while the
	@# LRS was not yet up); it stops with the server.
	$(RUN_ENV) sh -c '$(BIN)/flask lms worker --sleep 2 >instance/worker.log 2>&1 & W=$$!; \
	  trap "kill $$W 2>/dev/null" EXIT INT TERM; $(BIN)/flask run --host $(HOST) --port $(PORT)' 

worker: install
	$(BIN)/flask lms worker

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lms_core lrs plugins/anti_idle plugins/credit_bank

mypy: install
	$(BIN)/mypy lms_core lrs plugins/anti_idle plugins/credit_bank

test: install browser lint
	LMS_TEST_REQUIRE_BROWSER=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .mypy_cache
