# mmcompact: `make demo` runs the main job, `make test` the test suite. Both first run `make install`,
# which creates .venv with everything needed (quick when it is already there).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
READY := $(VENV)/.mmcompact-ready

.PHONY: install demo test clean-venv

install: $(READY)

$(READY): setup.py tools/install.sh
	VENV=$(abspath $(VENV)) bash tools/install.sh
	touch $@

demo: install
	$(PYTHON) tools/demo.py

test: install
	$(PYTHON) -m pytest

clean-venv:
	rm -rf $(VENV)
