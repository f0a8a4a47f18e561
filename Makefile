# The README's first two commands: `make demo` and `make test`. Both create or reuse .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STATE := $(CURDIR)/.state

# Keep every tool's state inside the project, and never reach a model hub at run time.
export RAY_AUTH_MODE := disabled
export RAY_TMPDIR := /tmp/fld-ray-$(shell id -u)
export RAY_USAGE_STATS_ENABLED := 0
export HF_HOME := $(STATE)/huggingface
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export YOLO_CONFIG_DIR := $(STATE)/ultralytics
export YOLO_OFFLINE := 1
export MPLCONFIGDIR := $(STATE)/matplotlib
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[dev]"
	# ultralytics pulls opencv-python, which shares the cv2 folder with the headless build: keep one.
	$(BIN)/pip uninstall -q -y opencv-python opencv-contrib-python 2>/dev/null || true
	$(BIN)/pip install -q --force-reinstall --no-deps "opencv-python-headless>=4.9,<5"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/fld-engine run --input samples/images --output out/demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q tests

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/.installed
	$(BIN)/python -m bench all

clean:
	rm -rf out .state
