# medvl: `make demo` runs all five papers, `make test` runs every test. Both install on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
MEDVL  := $(VENV)/bin/medvl
# The paper ids, read from the registry (medvl_core/papers.py; no torch import) when a recipe needs them.
PAPERS  = $(shell $(PY) -c 'from medvl_core.papers import PAPERS; print(*PAPERS)')
export MPLBACKEND := Agg

.PHONY: install lock demo test test-fast notebooks bench lint lab book clean

LOCK   := requirements.lock
UV     := $(VENV)/bin/uv

# TORCH=cpu (Linux without a GPU): the lock without its CUDA wheels (nvidia-*, cuda-*, triton), and torch and
# torchvision at the locked versions from the PyTorch CPU index. The choice sticks to .venv, so a later plain
# `make test` keeps it; `make install TORCH=pypi` goes back to the lock as it is.
PREV_TORCH      := $(shell cat $(VENV)/.medvl-torch 2>/dev/null)
TORCH           ?= $(or $(PREV_TORCH),pypi)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
CPU_LOCK        := $(VENV)/requirements-cpu.lock
STAMP           := $(VENV)/.medvl-installed$(if $(filter cpu,$(TORCH)),-cpu)
$(if $(filter-out pypi cpu,$(TORCH)),$(error TORCH=$(TORCH): use TORCH=pypi (the lock as it is) or TORCH=cpu))

install: $(STAMP)

# Installs exactly the locked versions (uv: ~40 s from an empty cache, vs ~2 min for pip); reinstalls
# only when the lock or pyproject.toml changes. uv itself is bootstrapped with pip at the locked version.
# uv counts a CPU build (2.14.1+cpu) as satisfying torch==2.14.1, hence the reinstall when leaving TORCH=cpu.
$(STAMP): pyproject.toml $(LOCK) $(if $(filter cpu,$(TORCH)),$(CPU_LOCK))
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet "$$(grep -m1 '^uv==' $(LOCK))"
	@rm -f $(VENV)/.medvl-installed $(VENV)/.medvl-installed-cpu
ifeq ($(TORCH),cpu)
	$(UV) pip sync --quiet --python $(PY) $(CPU_LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps --index-url $(TORCH_CPU_INDEX) \
	    $$(grep -oE '^torch(vision)?==[^ ]+' $(LOCK))
else
	$(UV) pip sync --quiet --python $(PY) $(LOCK) \
	    $(if $(filter cpu,$(PREV_TORCH)),--reinstall-package torch --reinstall-package torchvision)
endif
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name medvl --display-name "medvl (.venv)" >/dev/null
	@echo $(TORCH) > $(VENV)/.medvl-torch
	@touch $@

# The lock for TORCH=cpu (tests/test_lock_platforms.py checks that only torch needs what it drops).
$(CPU_LOCK): $(LOCK)
	@mkdir -p $(dir $@)
	grep -vE '^(nvidia-|cuda-|triton==|torch==|torchvision==)' $(LOCK) > $@

# Re-resolve pyproject.toml's ranges (+ lock-constraints.txt) into requirements.lock, one universal lock with
# platform markers (tests/test_lock_platforms.py resolves it for Linux x86-64 and aarch64 and macOS arm64).
# uv keeps the pins already in the lock wherever the ranges still allow them; then `make install`.
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet uv
	$(UV) pip compile pyproject.toml --extra dev --constraint lock-constraints.txt --python-version 3.11 \
	    --universal --output-file $(LOCK)

# The demo never makes a paid call: the API keys are removed from its environment (and its kernels').
NO_KEYS := env -u ANTHROPIC_API_KEY -u OPENAI_API_KEY -u ANTHROPIC_BASE_URL -u OPENAI_BASE_URL

demo: install
	@for p in $(filter-out vlm_feature_probing,$(PAPERS)); do $(NO_KEYS) $(MEDVL) run $$p --out runs/demo/$$p || exit 1; done
	@$(NO_KEYS) $(MEDVL) run vlm_feature_probing --out runs/demo/vlm_feature_probing -p run_models '["$(CURDIR)/runs/demo/loss_relaxation/dual_encoder"]'
	@$(MEDVL) summary runs/demo

# Tests run on JOBS pytest-xdist workers (default: one per core), each single-threaded (torch/BLAS): no
# oversubscription. nbval executes each notebook once, on one worker, and the smoke tests of that paper follow
# it on the same worker, reading the metrics.json it recorded (root conftest.py). The wall and CPU time land in
# benchmarks/timings.md ("make test (cold|warm data root)").
JOBS     ?= $(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PYTEST   := $(PY) -m pytest -q -p no:cacheprovider -n $(JOBS) --dist loadgroup
NBVAL    := --nbval-lax --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg
DATA_DIR  = $(or $(MEDVL_DATA),$(HOME)/.cache/medvl)
DATA_STATE = $(if $(wildcard $(DATA_DIR)/*),warm,cold)
TIMED    := $(ONE_THREAD) $(PY) benchmarks/timings.py run

test: install
	@$(TIMED) "make test ($(DATA_STATE) data root)" --note "$(JOBS) workers" -- $(PYTEST) notebooks tests $(NBVAL)

# The edit loop: unit tests only (no notebook, no toy paper-protocol run, no multi-process run).
test-fast: install
	@$(TIMED) "make test-fast ($(DATA_STATE) data root)" --note "$(JOBS) workers" -- $(PYTEST) tests -m "not notebook and not slow"

# Committed outputs come from the settings `make test` checks them under: one thread per notebook (JOBS at a time).
notebooks: install
	@printf '%s\n' $(PAPERS) | $(ONE_THREAD) xargs -P $(JOBS) -n 1 $(MEDVL) refresh

# Every benchmark, one after the other; prints each one's wall time and fails if one fails.
bench: install
	@start=$$(date +%s); failed=""; for b in benchmarks/bench_*.py; do \
	    t=$$(date +%s); echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; echo "   ($$(( $$(date +%s) - t )) s)"; \
	done; echo "make bench: $$(( $$(date +%s) - start )) s in all"; test -z "$$failed" || { echo "failed:$$failed"; exit 1; }

lint: install
	$(VENV)/bin/ruff check medvl_core tests benchmarks
	$(VENV)/bin/lint-imports

lab: install
	cd notebooks && ../$(VENV)/bin/jupyter lab

# The course site from the committed, executed notebooks (nothing re-executed): _build/book/html/index.html.
# Sphinx warnings are errors; MathJax, search and scripts are local (docs/book/build.py checks every page).
book: install
	$(PY) docs/book/build.py

clean:
	rm -rf runs .pytest_cache _build
