#!/usr/bin/env bash
# The project's one entry point on a fresh Debian 12 machine, as root.
#
#   ./build.sh demo    install what is missing, build, run `switchyard demo`
#   ./build.sh test    install what is missing, build (warnings as errors), run every test,
#                      then again under AddressSanitizer + UndefinedBehaviorSanitizer, then
#                      the multi-worker and admin tests (ctest -L tsan) under ThreadSanitizer,
#                      then fuzz the HTTP/1 parsers for 20 s per target
#   ./build.sh deps    install what is missing only
#   ./build.sh build   release build only, into build/release
#   ./build.sh fuzz [seconds]  build the libFuzzer targets (clang) into build/fuzz and run each
#                      for `seconds` (600), one at a time, growing build/fuzz/corpus/
#
# Everything comes from Debian packages; nothing is downloaded at configure or build time.
set -euo pipefail
cd "$(dirname "$0")"

packages=(
    g++ cmake ninja-build pkg-config
    libboost1.81-dev libssl-dev libyaml-cpp-dev libspdlog-dev libgtest-dev libbenchmark-dev
    libre2-dev  # the regexes of routes (linear time)
    prometheus-cpp-dev  # the /metrics text (core library only)
    prometheus  # promtool and the server: the /metrics test, deploy/'s config and dashboard tests
    python3  # the interpreter of tests/deploy (/usr/bin/python3, standard library only)
    # Not python3-scipy, which tests/analysis/fixtures/sequential_fixtures.py would rather use:
    # its python3-pythran needs libboost-dev (1.74), which conflicts with libboost1.81-dev; the
    # script falls back to the standard library (lgamma, a shifted log-sum-exp) to 1e-12.
    python3-websockets  # client and servers of tests/proxy/websocket_test.py
    docker-compose  # `docker-compose config`, which checks deploy/docker-compose.yml
    curl  # deploy/release.sh asks the admin API with it; the TLS tests use it as a client
    openssl  # the TLS tests make their CA and certificates with the openssl command
    testssl.sh  # the TLS listener's scan: no protocol below TLS 1.2, no weak cipher
    clang libclang-rt-14-dev llvm-14  # libFuzzer targets: clang 14, libFuzzer, llvm-symbolizer
    chromium  # headless, driven through its DevTools protocol: the live page's browser_tests
)

jobs=$(nproc)
# Sanitizer builds compile at -O1 with line tables only (-g1, enough for a report to name every
# frame, inlined ones included): the checks need neither -O2 nor full debug information, and
# RelWithDebInfo's -O2 -g took 1.7 times the CPU time to build the ASan+UBSan tree (1424 s
# against 821 s).
sanitizer_build=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")

deps() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "installing: ${missing[*]}"
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
            "${missing[@]}"
    fi
}

# configure_and_build DIR [cmake args...]
configure_and_build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

# run_tests DIR [ctest args...]
run_tests() {
    local dir=$1
    shift
    # ctest prints its own summary line ("100% tests passed, 0 tests failed out of N").
    ctest --test-dir "$dir" -j "$jobs" --output-on-failure --timeout 300 "$@"
}

# run_fuzzers SECONDS CORPUS: builds tests/fuzz into build/fuzz with clang and runs each target
# for SECONDS, one after another, on CORPUS/<target> (the seeds of tests/fuzz/corpus copied in).
# Fails at the first crash; the input that crashed is kept in build/fuzz/findings/.
fuzz_targets=(request_head_fuzz response_head_fuzz chunked_fuzz proxy_protocol_fuzz)
run_fuzzers() {
    local seconds=$1 corpus=$2
    CC=clang-14 CXX=clang++-14 configure_and_build build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DSWITCHYARD_WERROR=ON -DSWITCHYARD_FUZZ=ON
    mkdir -p build/fuzz/findings
    for target in "${fuzz_targets[@]}"; do
        mkdir -p "$corpus/$target"
        cp tests/fuzz/corpus/"$target"/* "$corpus/$target/"
        local log=build/fuzz/$target.log
        if ! ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer \
            build/fuzz/tests/fuzz/"$target" "$corpus/$target" -dict=tests/fuzz/http1.dict \
            -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
            -artifact_prefix=build/fuzz/findings/"$target"- >"$log" 2>&1; then
            tail -n 50 "$log"
            echo "$target failed; its input is in build/fuzz/findings/, its log in $log"
            return 1
        fi
        echo "$target: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)"
    done
}

case "${1:-}" in
    deps)
        deps
        ;;
    build)
        deps
        configure_and_build build/release -DCMAKE_BUILD_TYPE=Release
        ;;
    demo)
        deps
        configure_and_build build/release -DCMAKE_BUILD_TYPE=Release -DSWITCHYARD_TESTS=OFF \
            -DSWITCHYARD_BENCH=OFF
        shift
        exec build/release/admin/switchyard demo "$@"
        ;;
    test)
        deps
        echo "== release build, warnings as errors"
        configure_and_build build/ci -DCMAKE_BUILD_TYPE=Release -DSWITCHYARD_WERROR=ON
        run_tests build/ci
        echo "== AddressSanitizer + UndefinedBehaviorSanitizer build"
        configure_and_build build/asan "${sanitizer_build[@]}" -DSWITCHYARD_WERROR=ON \
            -DSWITCHYARD_SANITIZE=ON -DSWITCHYARD_BENCH=OFF
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            run_tests build/asan
        echo "== ThreadSanitizer build (multi-worker and admin tests)"
        # Only the test binaries labelled tsan (tests/CMakeLists.txt), and the executable they run.
        cmake -S . -B build/tsan -G Ninja "${sanitizer_build[@]}" -DSWITCHYARD_WERROR=ON \
            -DSWITCHYARD_TSAN=ON -DSWITCHYARD_BENCH=OFF >/dev/null
        cmake --build build/tsan -j "$jobs" --target tsan_tests
        TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" run_tests build/tsan -L tsan
        echo "== libFuzzer targets"
        rm -rf build/fuzz/ci-corpus
        run_fuzzers 20 build/fuzz/ci-corpus
        ;;
    fuzz)
        deps
        run_fuzzers "${2:-600}" build/fuzz/corpus
        ;;
    *)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
