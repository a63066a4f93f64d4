# rsdl_qgis: build, install, test and demo.
#   make install   the plugin into a QGIS profile, enabled; its Python dependencies into the
#                  folder the profiles share (rsdl_qgis/deps.py chooses them for this host)
#   make test      whatever set-up is missing, the lint and type gates, then the test suite
#   make test-hosts  make test here (QGIS 3.22) and in Debian 13 / testing roots (3.40, 3.44)
#   make demo      the workflow on the bundled sample data, through qgis_process
#   make zip       a ZIP for QGIS's "Install from ZIP"
# QGIS_CUSTOM_CONFIG_PATH selects the profile folder, as it does for QGIS itself.

PYTHON       ?= /usr/bin/python3
QGIS_PROCESS ?= qgis_process.bin
VERSION      := $(shell sed -n 's/^version=//p' metadata.txt)
CONFIG_ROOT  := $(if $(QGIS_CUSTOM_CONFIG_PATH),$(QGIS_CUSTOM_CONFIG_PATH),$(HOME)/.local/share/QGIS/QGIS3)
PROFILE_DIR  ?= $(CONFIG_ROOT)/profiles/default
PLUGIN_DEST  := $(PROFILE_DIR)/python/plugins/rsdl_qgis
# rsdl-scheduler, rsdl-worker, rsdl-slurm (docs/cluster.md) go there
BINDIR       ?= $(HOME)/.local/bin
# DEPS_KIND: full (TensorFlow and ONNX Runtime) or apply (apply models only: ONNX Runtime,
# no TensorFlow). Which packages and versions suit this host (its Python, its numpy, a GPU)
# is decided in rsdl_qgis/deps.py only; `python3 rsdl_qgis/deps.py plan` says why.
DEPS_KIND    ?= full
DEPS_REQS    := $(shell $(PYTHON) rsdl_qgis/deps.py requirements --kind $(DEPS_KIND))
# one dependency folder per Python, shared by every profile of the settings root
DEPS_DEST    := $(CONFIG_ROOT)/rsdl_qgis/python-deps/$(shell $(PYTHON) rsdl_qgis/deps.py tag)
PIP          := $(PYTHON) -m pip install --disable-pip-version-check --no-warn-script-location \
                --only-binary=:all: -q
BUILD        := build
DEPS         := $(BUILD)/deps
TESTDEPS     := $(BUILD)/testdeps
QT6CHECK     := $(BUILD)/qt6check
PLUGIN       := $(BUILD)/plugin/rsdl_qgis
PYTEST_ARGS  ?=

SYSTEM_PACKAGES := qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-pip
# otb-bin: the peer the tests compare with; xvfb, xauth: the real QGIS window of tests/desktop;
# slurm-wlm, munge, openssh-server, openssl: docs/cluster.md's recipes run as written
TEST_PACKAGES   := $(SYSTEM_PACKAGES) otb-bin? xvfb xauth slurm-wlm? munge? openssh-server? openssl

.PHONY: FORCE lint all system test-system deps testdeps plugin install zip test demo screenshots \
        clean record-otb test-hosts test-trixie test-forky demo-trixie

all: plugin

system:
	@scripts/ensure-system-packages $(SYSTEM_PACKAGES)

test-system:
	@scripts/ensure-system-packages $(TEST_PACKAGES)

deps: system $(DEPS)/.stamp
# reinstalled when the requirements this host needs differ from those installed
$(DEPS)/.stamp: $(if $(filter-out $(DEPS_REQS),$(shell cat $(DEPS)/.stamp 2>/dev/null))$(filter-out $(shell cat $(DEPS)/.stamp 2>/dev/null),$(DEPS_REQS)),FORCE)
	@test -n "$(DEPS_REQS)" || { echo "rsdl_qgis/deps.py gave no requirements" >&2; exit 1; }
	$(PYTHON) rsdl_qgis/deps.py install --kind $(DEPS_KIND) --target $(DEPS)
	$(PYTHON) rsdl_qgis/deps.py requirements --kind $(DEPS_KIND) > $@

# the tool folders are reinstalled when their requirements file's content differs from the
# copy kept as the stamp (not its time: a fresh copy of the tree, as in a Debian root,
# keeps what was installed)
testdeps: system $(TESTDEPS)/.stamp
$(TESTDEPS)/.stamp: $(if $(shell cmp -s requirements-test.txt $(TESTDEPS)/.stamp || echo changed),FORCE)
	rm -rf $(TESTDEPS) && mkdir -p $(TESTDEPS)
	$(PIP) --target $(TESTDEPS) -r requirements-test.txt
	cp requirements-test.txt $@

$(QT6CHECK)/.stamp: $(if $(shell cmp -s requirements-qt6check.txt $(QT6CHECK)/.stamp || echo changed),FORCE)
	rm -rf $(QT6CHECK) && mkdir -p $(QT6CHECK)
	$(PIP) --ignore-requires-python --no-deps --target $(QT6CHECK) -r requirements-qt6check.txt
	cp requirements-qt6check.txt $@

plugin: system
	rm -rf $(PLUGIN) && mkdir -p $(PLUGIN)
	cp -r rsdl_qgis/. $(PLUGIN)/
	cp -r metadata.txt LICENSE icons $(PLUGIN)/
	find $(PLUGIN) -name __pycache__ -prune -exec rm -rf {} +

install: deps plugin
	mkdir -p $(dir $(PLUGIN_DEST)) $(dir $(DEPS_DEST))
	rm -rf $(PLUGIN_DEST) $(DEPS_DEST)
	cp -r $(PLUGIN) $(PLUGIN_DEST)
	cp -al $(DEPS) $(DEPS_DEST) 2>/dev/null || cp -a $(DEPS) $(DEPS_DEST)
	$(PYTHON) scripts/enable-plugin.py $(PROFILE_DIR) rsdl_qgis
	$(PYTHON) $(PLUGIN_DEST)/cluster_cli.py install --bin $(BINDIR) --deps $(DEPS_DEST) \
	  --python $(PYTHON)
	@echo "Installed rsdl_qgis $(VERSION) into $(PROFILE_DIR) (dependencies: $(DEPS_DEST))"

zip: plugin
	mkdir -p dist && rm -f dist/rsdl_qgis-$(VERSION).zip
	$(PYTHON) -m zipfile -c dist/rsdl_qgis-$(VERSION).zip $(PLUGIN)
	@echo "dist/rsdl_qgis-$(VERSION).zip"

# the lint and type gates (pyproject.toml): ruff on everything, mypy on the engine; QGIS 4
# readiness (the Qt 6 migration checker finds nothing); the ZIP passes the checks of the
# QGIS plugin repository
lint: deps testdeps $(QT6CHECK)/.stamp zip
	PYTHONPATH=$(TESTDEPS) $(PYTHON) -m ruff check rsdl_qgis tests bench scripts
	PYTHONPATH=$(TESTDEPS):$(DEPS) $(PYTHON) -m mypy
	PYTHON=$(PYTHON) scripts/check-qt6 $(QT6CHECK)
	$(PYTHON) scripts/check-plugin-zip.py dist/rsdl_qgis-$(VERSION).zip

test: test-system deps testdeps plugin lint
	QT_QPA_PLATFORM=offscreen PYTHONPATH=$(DEPS):$(TESTDEPS):$(CURDIR) \
	  $(PYTHON) -m pytest -p no:cacheprovider tests $(PYTEST_ARGS)

# The newer QGIS hosts, each in a Debian root that scripts/host makes (debootstrap) and
# reuses from $$RSDL_HOSTS (default /tmp/rsdl-hosts): the same make test there, on a copy of
# this tree. trixie: QGIS 3.40 LTR, Python 3.13, numpy 2 (everything); forky (testing):
# QGIS 3.44, Python 3.14 (no TensorFlow build yet: the tests marked tensorflow are skipped,
# saying why).
test-trixie:
	scripts/host run trixie make test
test-forky:
	scripts/host run forky make test
# the suite on all three, the roots prepared while this host's suite runs (CI runs this)
test-hosts:
	scripts/test-hosts
demo-trixie:
	scripts/host run trixie make demo

# OTB's outputs that stand in for OTB where Debian packages none (tests/otb.py), recorded
# again on a host with otb-bin
OTB_TESTS := tests/unit/test_sampling_otb.py tests/unit/test_classify.py tests/unit/test_vector_varieties.py
record-otb: test-system deps testdeps
	rm -rf tests/data/otb-recorded
	RSDL_OTB=record QT_QPA_PLATFORM=offscreen PYTHONPATH=$(DEPS):$(TESTDEPS):$(CURDIR) \
	  $(PYTHON) -m pytest -p no:cacheprovider -q $(OTB_TESTS)

# The demo installs into a profile of its own (build/demo-profile), not the user's.
DEMO_CONFIG := $(CURDIR)/$(BUILD)/demo-profile
demo:
	$(MAKE) --no-print-directory install QGIS_CUSTOM_CONFIG_PATH=$(DEMO_CONFIG)
	QT_QPA_PLATFORM=offscreen QGIS_PROCESS=$(QGIS_PROCESS) PYTHON=$(PYTHON) \
	  QGIS_CUSTOM_CONFIG_PATH=$(DEMO_CONFIG) scripts/demo

# docs/img: a session in the real QGIS window (Xvfb), the same one tests/desktop checks
screenshots: test-system deps
	scripts/desktop-session $(BUILD)/desktop-session
	mkdir -p docs/img && cp $(BUILD)/desktop-session/*.png docs/img/

clean:
	rm -rf $(BUILD) dist demo-output
