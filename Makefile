# Two set-up commands for a fresh Debian / Python 3.11 machine (root, no GPU):
#   make demo   installs what is missing, then fits the bundled example
#   make test   installs what is missing, then runs the test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.cfg requirements-dev.txt Makefile | sha1sum | cut -c1-12)

.PHONY: demo test install lint wheel-test clean-venv

install: $(STAMP)

$(STAMP):
	@# scikit-sparse (CHOLMOD, Theseus' sparse CPU solver) compiles against SuiteSparse.
	@if ! [ -f /usr/include/suitesparse/cholmod.h ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsuitesparse-dev; fi
	@[ -x $(BIN)/python ] || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	@# torch pinned: the local CPU wheel; anything unpinned pulls CUDA packages. The package
	@# itself asks for torch>=2.1 and keeps whatever torch (CPU or CUDA) is already there.
	$(BIN)/pip install -q torch==2.13.0 numpy scipy cython
	@# The [theseus] extra (solver.kind=theseus, the reference path). scikit-sparse 0.5 needs
	@# SuiteSparse 7; Debian 12 ships 5.12, which 0.4.16 matches; theseus-ai's sdist needs torch
	@# at build time, hence no build isolation.
	$(BIN)/pip install -q --no-build-isolation scikit-sparse==0.4.16
	$(BIN)/pip install -q --no-build-isolation theseus-ai==0.2.3 urdf-parser-py torchlie torchkin semantic-version
	@# The renderer (slahmr-opt render): pyrender on Mesa's OSMesa (CPU). pyrender pins
	@# PyOpenGL==3.1.0, which lacks OSMesaCreateContextAttribs: the [render] extra first, then it alone.
	@if ! ldconfig -p | grep -q libOSMesa; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6; fi
	$(BIN)/pip install -q PyOpenGL==3.1.10 pyglet==1.5.31 freetype-py==2.5.1 six==1.17.0
	$(BIN)/pip install -q --no-deps pyrender==0.1.45
	@# The video front end (slahmr-opt run): MediaPipe 0.10.21 ships its pose models in the wheel.
	@# Its metadata pins numpy<2 and pulls jax and opencv-contrib (the [video] extra takes them);
	@# here it runs with numpy 2 and needs only these, so it is installed without them.
	$(BIN)/pip install -q absl-py==2.5.1 flatbuffers==25.12.19 protobuf==4.25.9 attrs==26.1.0 \
	  opencv-python-headless==5.0.0.93
	$(BIN)/pip install -q --no-deps mediapipe==0.10.21
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-build-isolation -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

demo: install
	$(BIN)/slahmr-opt demo --out outputs/demo --overwrite

test: install
	$(BIN)/python -m pytest -q tests

lint: install
	$(BIN)/ruff check slahmr_opt priors tests bench scripts

# The wheel in a clean venv, as a user installs it into an environment that already has torch:
# build, install with the [video] and [dev] extras, pip check, --version, the demo, the fast tests
# against the installed package (CI runs this after `make test`).
WHEEL_VENV := build/wheel-venv
wheel-test: install
	rm -rf build/wheel $(WHEEL_VENV) build/wheel-demo
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w build/wheel .
	$(PY) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install -q --upgrade pip
	$(WHEEL_VENV)/bin/pip install -q torch==2.13.0
	$(WHEEL_VENV)/bin/pip install -q "$$(ls build/wheel/slahmr_opt-*.whl)[video,dev]"
	$(WHEEL_VENV)/bin/pip check
	$(WHEEL_VENV)/bin/slahmr-opt --version
	cd build && wheel-venv/bin/slahmr-opt demo --out wheel-demo
	@# From build/, so that the repository's own slahmr_opt/ is not on the import path.
	cd build && wheel-venv/bin/pytest -q -p no:cacheprovider -m "not slow" ../tests
