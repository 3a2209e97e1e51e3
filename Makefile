# `make quickstart`: set up and train the default classifier on Fashion-MNIST.
# `make test`: set up (idempotent) and run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test setup data bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch/torchvision are pinned to the builds this machine ships on disk (no multi-GB download).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[dev,apps]"
	touch $(STAMP)

setup: $(STAMP) system-data system-browser system-dicom

# Debian's Fashion-MNIST when we are root with apt; otherwise `toolkit data prepare` downloads it.
.PHONY: system-data
system-data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) || true; \
	fi

# Embedded datasets (each prepared once, offline afterwards) and the ImageNet weights the tests use.
DATASETS := fashion-mnist digits nuclei brain-lesions

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; no browser download).
.PHONY: system-browser apps
system-browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null)) || true; \
	fi

# Debian's dicom3tools: the tests check every DICOM SEG the toolkit writes with its `dciodvfy` validator.
.PHONY: system-dicom
system-dicom:
	@if ! command -v dciodvfy >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -qq dicom3tools >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null && apt-get install -y -qq dicom3tools >/dev/null)) || true; \
	fi

data: setup
	$(BIN)/toolkit data prepare $(DATASETS)
	$(BIN)/toolkit weights fetch mobilenet_v2

quickstart: data
	$(BIN)/toolkit train classify

test: data
	$(BIN)/python -m pytest -q

# Benchmarks compare the toolkit with plain reference code in one run; results go to runs/bench/.
bench: data
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/pretrained_vs_scratch.py
	$(BIN)/python benchmarks/segment_speed.py
	$(BIN)/python benchmarks/segment3d_speed.py

# `make apps`: train the demo models that are missing (about 10 min each on CPU, progress shown), export them to
# ONNX beside their checkpoints (the apps then run them on onnxruntime on a CPU), then serve both apps until Ctrl-C.
APPS_DETECT := runs/detect/nuclei-demo/weights/best.pt
APPS_SEG3D := runs/segment3d/brain-lesions-demo/weights/best.pt
apps: data
	@test -f $(APPS_DETECT) || $(BIN)/toolkit train detect train.name=nuclei-demo train.exist_ok=true
	@test -f $(APPS_SEG3D) || $(BIN)/toolkit train segment3d train.name=brain-lesions-demo train.exist_ok=true
	@for ckpt in $(APPS_DETECT) $(APPS_SEG3D); do test $${ckpt%.pt}.onnx -nt $$ckpt || $(BIN)/toolkit export $$ckpt; done
	@echo "detection app: http://localhost:8501   medical app: http://localhost:8502   (Ctrl-C stops both)"
	@trap 'kill 0' INT TERM; $(BIN)/toolkit app medical --port 8502 & $(BIN)/toolkit app detection --port 8501; wait

clean:
	rm -rf runs .pytest_cache
