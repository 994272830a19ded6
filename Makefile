# Two set-up commands for a fresh Debian / Python 3.11 machine (root, no GPU):
#   make demo   installs what is missing, then fits the bundled example
#   make test   installs what is missing, then runs the test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.cfg requirements-dev.txt Makefile | sha1sum | cut -c1-12)

.PHONY: demo test install lint clean-venv

install: $(STAMP)

$(STAMP):
	@# scikit-sparse (CHOLMOD, Theseus' sparse CPU solver) compiles against SuiteSparse.
	@if ! [ -f /usr/include/suitesparse/cholmod.h ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsuitesparse-dev; fi
	@[ -x $(BIN)/python ] || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	@# torch pinned: the local CPU wheel; anything unpinned pulls CUDA packages.
	$(BIN)/pip install -q torch==2.13.0 numpy scipy cython
	@# scikit-sparse 0.5 needs SuiteSparse 7; Debian 12 ships 5.12, which 0.4.16 matches.
	$(BIN)/pip install -q --no-build-isolation scikit-sparse==0.4.16
	$(BIN)/pip install -q --no-build-isolation theseus-ai==0.2.3 urdf-parser-py torchlie torchkin semantic-version
	@# pytorch3d: only its pure-Python parts (transforms, structures) build on CPU.
	PYTORCH3D_NO_EXTENSION=1 $(BIN)/pip install -q --no-binary easypytorch3d --no-build-isolation --no-deps easypytorch3d==0.7.9.post1
	@# The renderer (slahmr-opt render): pyrender on Mesa's OSMesa (CPU). pyrender pins
	@# PyOpenGL==3.1.0, which lacks OSMesaCreateContextAttribs: its deps first, then it alone.
	@if ! ldconfig -p | grep -q libOSMesa; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libosmesa6; fi
	$(BIN)/pip install -q PyOpenGL==3.1.10 pyglet==1.5.31 freetype-py==2.5.1 six==1.17.0
	$(BIN)/pip install -q --no-deps pyrender==0.1.45
	@# The video front end (slahmr-opt run): MediaPipe 0.10.21 ships its pose models in the wheel.
	@# Its metadata pins numpy<2 and pulls jax and opencv-contrib; it runs with our numpy 2 and
	@# needs only these, so it is installed without its declared dependencies.
	$(BIN)/pip install -q absl-py==2.5.1 flatbuffers==25.12.19 protobuf==4.25.9 attrs==26.1.0 \
	  opencv-python-headless==5.0.0.93
	$(BIN)/pip install -q --no-deps mediapipe==0.10.21
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-build-isolation --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

demo: install
	$(BIN)/slahmr-opt demo --out outputs/demo

test: install
	$(BIN)/python -m pytest -q tests

lint: install
	$(BIN)/ruff check slahmr_opt priors tests bench scripts
