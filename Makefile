# Everything a fresh machine needs is installed by `make setup`; every other target depends on it.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.cua-installed

.PHONY: setup system-deps bytecode vm-server test demo bench clean

setup: system-deps $(STAMP) bytecode

system-deps:
	@bash scripts/install-system-deps

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# An editable install leaves cua's own modules uncompiled, and under PYTHONDONTWRITEBYTECODE (set
# on many CI images) every `cua` process would compile them again: about half a second each.
bytecode: $(STAMP)
	@$(PY) -m compileall -q cua

# The cua computer-server (the VM side of the remote environment) in its own venv, for its tests.
vm-server:
	@bash scripts/install-vm-server

test: setup vm-server
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

demo: setup
	$(VENV)/bin/cua demo

bench: setup
	$(PY) bench/step_cost.py

clean:
	rm -rf $(VENV) runs .pytest_cache
