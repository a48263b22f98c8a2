# mmcompact: `make demo` runs the main job, `make test` the test suite. Both first run `make install`,
# which creates .venv with everything needed (quick when it is already there).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
READY := $(VENV)/.mmcompact-ready
# `make test` runs the suite in this many pytest-xdist processes, one thread each (TEST_WORKERS=0: one process)
TEST_WORKERS ?= 2

.PHONY: install demo test faults clean-venv

install: $(READY)

$(READY): setup.py tools/misc/install.sh tools/misc/constraints.txt
	VENV=$(abspath $(VENV)) bash tools/misc/install.sh
	touch $@

demo: install
	$(PYTHON) tools/misc/demo.py

test: install
	$(PYTHON) -m pytest -n $(TEST_WORKERS)

# The fault tests alone: SIGKILL + resume (also mid-save), atomic writes and hashes, NaN guard (also under
# DDP), malicious and broken checkpoints, dataset checks, one-line errors, fuzzing, resume refusals, the reuse
# of finished study runs only.
faults: install
	$(PYTHON) -m pytest tests/engine/test_reliability.py tests/checkpoint/test_security.py tests/test_fuzz.py \
		tests/checkpoint/test_checkpoint_safety.py tests/data/test_dataset_checks.py \
		tests/engine/test_distributed.py::test_nonfinite_guard_skips_the_step_on_every_rank \
		tests/reparam/test_moment_fusion.py tests/models/test_convert_timm.py \
		tests/tools/test_train_test_tools.py tests/distill/test_distill_runner.py::test_export_cli_writes_the_student_of_a_runner_checkpoint \
		tests/cli/test_runner.py

clean-venv:
	rm -rf $(VENV)
