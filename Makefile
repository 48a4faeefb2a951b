# crdkit: the two commands of the README, and a few more for developers.
#   make demo   build, start a local control plane, show crdkit working
#   make test   the whole test suite (ASan+UBSan, real apiserver); ends with
#               "N passed, N failed"
#   make build  release build in build/release
#   make lint   clang-tidy and cppcheck
#   make fuzz   longer fuzz runs (FUZZ_SECONDS per target, default 300)
#   make bench  benchmarks on the local control plane (docs/performance.md)
#   make format clang-format the sources
.PHONY: all deps build test demo lint fuzz bench bench-peers format clean install

all: build

deps:
	@scripts/install-deps

build/release/build.ninja: | deps
	meson setup build/release --buildtype=release -Dtests=false

build: deps build/release/build.ninja
	ninja -C build/release

test: deps
	@scripts/run-tests

demo: deps build
	@scripts/demo

lint: deps
	@scripts/lint

fuzz: deps
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} scripts/fuzz

bench: deps build
	@scripts/bench

bench-peers: deps build
	@bench/harness/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

install: build
	meson install -C build/release

clean:
	rm -rf build
