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

# The main job: train digits in the float model, write the Verilog of the on-chip XOR
# trainer, train it in RTL under Verilator and check it bit-exact against the model.
demo: $(STAMP)
	$(BIN)/mgd-hw train --config examples/digits_weight.toml --out out/demo --force
	$(BIN)/mgd-hw generate --config examples/hw_xor.toml -o out/demo/rtl --force
	$(BIN)/mgd-hw sim --config examples/hw_xor.toml

test: $(STAMP)
	$(BIN)/pytest -n 2 -q

test-slow: $(STAMP)
	$(BIN)/pytest -n 2 -q -m slow

bench: $(STAMP)
	$(BIN)/mgd-hw bench

# The whole gateware regression (default and slow matrices, mutation check, trainer
# runs) on 2 cores, then the mgd-hw regress matrix of the example configs (trainer
# runs capped at 50k steps; the full runs are in the slow tests).
regress: $(STAMP)
	$(BIN)/pytest -n 2 -q -m "slow or not slow" tests/test_perturb_gen.py \
		tests/test_cost_acc.py tests/test_weight_update.py tests/test_core.py \
		tests/test_bare_rtl.py tests/test_mutation.py tests/test_trainer.py
	$(BIN)/mgd-hw regress -n 2 --max-steps 50000

# Regenerate the committed Verilog of every examples/hw_core_*.toml and of the XOR and
# parity trainers (tests fail when stale).
rtl: $(STAMP)
	for f in examples/hw_core_*.toml examples/hw_xor.toml examples/hw_parity3.toml; do \
		n=$$(basename $$f .toml); \
		$(BIN)/mgd-hw generate --config $$f -o rtl/$$n --force || exit 1; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) out build sim_build .pytest_cache
