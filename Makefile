# CrabCache front door. On a fresh Debian 12 machine (as root):
#   make run    install what is missing, build, start crabcached with working defaults
#   make test   install what is missing, build (gcc, clang ASan+UBSan, clang TSan), run every test
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_COMMON = -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  $(shell command -v ccache >/dev/null 2>&1 && echo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
CLANG := -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
RUN_ARGS ?=

.PHONY: deps deps-build build run test test-release test-asan test-tsan asan tsan format \
        format-check clean bench soak

deps-build:
	@tools/install-deps.sh build

deps:
	@tools/install-deps.sh test

# Configure a build directory once; later builds reuse it (and ccache keeps rebuilds cheap).
# CMAKE_COMMON is expanded when a recipe runs (=, not :=), after `deps` has installed ccache.
$(BUILD)/release/build.ninja:
	cmake -S . -B $(BUILD)/release $(CMAKE_COMMON) -DCMAKE_BUILD_TYPE=RelWithDebInfo
$(BUILD)/asan/build.ninja:
	cmake -S . -B $(BUILD)/asan $(CMAKE_COMMON) $(CLANG) -DCMAKE_BUILD_TYPE=Debug \
	  -DCRABCACHE_SANITIZER=asan -DCRABCACHE_SCRIPT_TESTS=OFF -DCRABCACHE_FUZZ=ON
$(BUILD)/tsan/build.ninja:
	cmake -S . -B $(BUILD)/tsan $(CMAKE_COMMON) $(CLANG) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCRABCACHE_SANITIZER=tsan -DCRABCACHE_WITH_GRPC=OFF -DCRABCACHE_SCRIPT_TESTS=OFF

build: deps-build $(BUILD)/release/build.ninja
	cmake --build $(BUILD)/release -j $(JOBS)

asan: deps $(BUILD)/asan/build.ninja
	cmake --build $(BUILD)/asan -j $(JOBS)

tsan: deps $(BUILD)/tsan/build.ninja
	cmake --build $(BUILD)/tsan -j $(JOBS)

run: build
	@$(BUILD)/release/server/crabcached $(RUN_ARGS)

# One CTest run over all three builds, so the output ends with one summary of every test.
test: deps $(BUILD)/release/build.ninja $(BUILD)/asan/build.ninja $(BUILD)/tsan/build.ninja
	cmake --build $(BUILD)/release -j $(JOBS)
	cmake --build $(BUILD)/asan -j $(JOBS)
	cmake --build $(BUILD)/tsan -j $(JOBS)
	@mkdir -p $(BUILD)/all
	@printf 'subdirs("%s")\n' $(abspath $(BUILD)/release) $(abspath $(BUILD)/asan) \
	  $(abspath $(BUILD)/tsan) > $(BUILD)/all/CTestTestfile.cmake
	cd $(BUILD)/all && ctest --output-on-failure -j $(JOBS) --timeout 600

test-release: deps $(BUILD)/release/build.ninja
	cmake --build $(BUILD)/release -j $(JOBS)
	cd $(BUILD)/release && ctest --output-on-failure -j $(JOBS)

test-asan: asan
	cd $(BUILD)/asan && ctest --output-on-failure -j $(JOBS)

test-tsan: tsan
	cd $(BUILD)/tsan && ctest --output-on-failure -j $(JOBS)

# CrabCache vs redis-server side by side (docs/benchmarks.md); not part of `make test`.
BENCH_ARGS ?=
bench: build
	/usr/bin/python3 bench/compare.py --build $(BUILD)/release $(BENCH_ARGS)

SOAK_SECONDS ?= 180

# Not part of `make test`: both front ends under hostile load against the ASan build, checked
# against a model, then RSS, exit status and sanitizer reports (tests/soak/run_soak.py).
soak: deps $(BUILD)/asan/build.ninja
	cmake --build $(BUILD)/asan -j $(JOBS) --target crabcached crabcache-soak
	/usr/bin/python3 tests/soak/run_soak.py --server $(BUILD)/asan/server/crabcached \
	  --driver $(BUILD)/asan/tests/soak/crabcache-soak --seconds $(SOAK_SECONDS)

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD)
