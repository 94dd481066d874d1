# The README's two commands are `make demo` and `make test`; both set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hpcgen-setup

HVD_STAMP := $(VENV)/.hpcgen-horovod
OPS_LIB := hpcgen/ops/_hpcgen_ops.so
OPS_SRC := CMakeLists.txt scripts/build-ops.sh $(wildcard csrc/*.cpp csrc/*.h csrc/*.cu)

.PHONY: setup ops cuda-check horovod demo test test-fast bench bench-kernels jobscripts slurm-up slurm-down clean

$(STAMP): pyproject.toml scripts/setup-venv.sh
	VENV=$(VENV) scripts/setup-venv.sh
	touch $(STAMP)

# The fused-op library (C++ CPU kernels; CUDA too with a CUDA torch + nvcc). Without a compiler the build script
# warns and hpcgen runs its pure-torch reference kernels.
$(OPS_LIB): $(STAMP) $(OPS_SRC)
	VENV=$(VENV) scripts/build-ops.sh
	@touch -c $@  # cmake may find nothing to relink; mark the library current so make does not rerun this

ops: $(OPS_LIB)

setup: $(STAMP) $(OPS_LIB)

# Compile every .cu with nvcc for sm_80 and sm_90 (no GPU needed; CI runs this)
cuda-check:
	scripts/check-cuda.sh

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
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/hpcgen bench scaling --model calo --out benchmarks/results/scaling_calo.json
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/hpcgen bench scaling --model cosmo --out benchmarks/results/scaling_cosmo.json
	$(PY) benchmarks/bench_fused_ops.py

bench-kernels: setup
	$(PY) benchmarks/bench_fused_ops.py

# Re-render jobscripts/<system>/ after a profile or renderer change (tests/test_slurm_render.py checks them)
jobscripts: setup
	$(PY) jobscripts/render_examples.py

# A single-host Slurm for the submission tests and for trying `hpcgen submit local` (root; scripts/local-slurm.sh)
slurm-up:
	scripts/local-slurm.sh start

slurm-down:
	scripts/local-slurm.sh stop

clean:
	rm -rf demo-out .pytest_cache build $(OPS_LIB)
