# medvl: `make demo` runs all five papers, `make test` runs every test. Both install on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
MEDVL  := $(VENV)/bin/medvl
STAMP  := $(VENV)/.medvl-installed
PAPERS := m3g_answer_generation perturbed_report_discrimination meems loss_relaxation vlm_feature_probing
export MPLBACKEND := Agg

.PHONY: install lock demo test unit notebooks bench lint lab clean

LOCK   := requirements.lock
UV     := $(VENV)/bin/uv

install: $(STAMP)

# Installs exactly the locked versions (uv: ~40 s from an empty cache, vs ~2 min for pip); reinstalls
# only when the lock or pyproject.toml changes. uv itself is bootstrapped with pip at the locked version.
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet "$$(grep -m1 '^uv==' $(LOCK))"
	$(UV) pip sync --quiet --python $(PY) $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name medvl --display-name "medvl (.venv)" >/dev/null
	@touch $@

# Re-resolve pyproject.toml's ranges (+ lock-constraints.txt) into requirements.lock; then `make install`.
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet uv
	$(UV) pip compile pyproject.toml --extra dev --constraint lock-constraints.txt --python-version 3.11 \
	    --output-file $(LOCK)

demo: install
	@for p in $(filter-out vlm_feature_probing,$(PAPERS)); do $(MEDVL) run $$p --out runs/demo/$$p || exit 1; done
	@$(MEDVL) run vlm_feature_probing --out runs/demo/vlm_feature_probing -p run_models '["$(CURDIR)/runs/demo/loss_relaxation/dual_encoder"]'
	@$(MEDVL) summary runs/demo

# nbval over notebooks/ first (each notebook executed once), then unit tests and the smoke
# tests, which read the metrics.json those executions recorded. Wall time -> runs/make-test.json (bench).
test: install
	@mkdir -p runs; start=$$(date +%s); \
	$(PY) -m pytest -q -p no:cacheprovider notebooks tests \
	    --nbval-lax --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg; rc=$$?; \
	echo "{\"seconds\": $$(( $$(date +%s) - start )), \"exit\": $$rc}" > runs/make-test.json; exit $$rc

unit: install
	$(PY) -m pytest -q tests -m "not notebook"

notebooks: install
	$(MEDVL) refresh $(PAPERS)

# Every benchmark, one after the other; prints each one's wall time and fails if one fails.
bench: install
	@start=$$(date +%s); failed=""; for b in benchmarks/bench_*.py; do \
	    t=$$(date +%s); echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; echo "   ($$(( $$(date +%s) - t )) s)"; \
	done; echo "make bench: $$(( $$(date +%s) - start )) s in all"; test -z "$$failed" || { echo "failed:$$failed"; exit 1; }

lint: install
	$(VENV)/bin/ruff check medvl_core tests benchmarks

lab: install
	cd notebooks && ../$(VENV)/bin/jupyter lab

clean:
	rm -rf runs .pytest_cache
