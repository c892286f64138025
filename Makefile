# One command for the main job (`make demo`) and one for the tests (`make test`).
# Each creates the virtual environment and installs the toolkit on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow bench regress lint rtl clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The main job: train digits in the float model, write the Verilog of the reference
# MGDCore, and check it bit-exact against the golden model under Verilator.
demo: $(STAMP)
	$(BIN)/mgd-hw train --config examples/digits_weight.toml --out out/demo --force
	$(BIN)/mgd-hw generate --config examples/hw_core_lfsr.toml -o out/demo/rtl --force
	$(BIN)/mgd-hw sim --config examples/hw_core_lfsr.toml --cycles 20000

test: $(STAMP)
	$(BIN)/pytest -n 2 -q

test-slow: $(STAMP)
	$(BIN)/pytest -n 2 -q -m slow

bench: $(STAMP)
	$(BIN)/python bench/bench_model.py
	$(BIN)/python bench/bench_hw.py

# The whole gateware regression (default and slow matrices, mutation check) on 2 cores.
regress: $(STAMP)
	$(BIN)/pytest -n 2 -q -m "slow or not slow" tests/test_gateware_gen_cost.py \
		tests/test_gateware_weight_update.py tests/test_gateware_core.py \
		tests/test_bare_rtl.py tests/test_mutation.py

# Regenerate the committed Verilog of every examples/hw_core_*.toml (tests fail when stale).
rtl: $(STAMP)
	for f in examples/hw_core_*.toml; do \
		n=$$(basename $$f .toml); \
		$(BIN)/mgd-hw generate --config $$f -o rtl/$$n --force || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) out build sim_build .pytest_cache
