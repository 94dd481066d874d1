# The README's two commands are `make demo` and `make test`; both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hpcgen-setup

HVD_STAMP := $(VENV)/.hpcgen-horovod

.PHONY: setup horovod demo test test-fast bench clean

$(STAMP): pyproject.toml scripts/setup-venv.sh
	VENV=$(VENV) scripts/setup-venv.sh
	touch $(STAMP)

setup: $(STAMP)

# Horovod 0.28.1 built from source with the C++17 fix (scripts/build-horovod.sh; ~3-8 min on 2 cores)
$(HVD_STAMP): $(STAMP) scripts/build-horovod.sh
	VENV=$(VENV) scripts/build-horovod.sh
	touch $(HVD_STAMP)

horovod: $(HVD_STAMP)

demo: setup
	VENV=$(VENV) scripts/demo.sh

test: setup horovod
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -ra

test-fast: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -ra -m "not slow and not mpi"

bench: setup horovod
	$(PY) benchmarks/bench_calo_mc.py
	$(PY) benchmarks/bench_hdf5_layout.py
	$(PY) benchmarks/bench_cosmo_lognormal.py
	$(PY) benchmarks/bench_cosmo_pm.py
	$(PY) benchmarks/bench_train_throughput.py

clean:
	rm -rf demo-out .pytest_cache
