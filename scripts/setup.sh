#!/usr/bin/env bash
# Set up everything embsr needs on a Debian 12 machine, then configure and build the project.
# Idempotent: a second run with nothing changed only re-checks and runs an incremental build.
#
#   scripts/setup.sh [--build-dir DIR] [--build-type TYPE] [--sanitize] [--debian-kokkos] [--no-build]
#                    [--target T]... [-- extra cmake args]
#
#   --target T       build only target T (repeatable; default: everything)
#
#   --debian-kokkos  build against Debian's own Serial-only Kokkos 3.4.1 (libtrilinos-kokkos-dev)
#                    instead of ours: checks that embsr works with a Kokkos packaged differently.
#
#   --cuda           build Kokkos 3.4.1 with CUDA + OpenMP + Serial (Debian's source plus
#                    scripts/patches/kokkos-3.4.1-cuda13.patch) and build embsr with its nvcc_wrapper.
#                    Needs the CUDA toolkit (nvcc, cuBLAS) in CUDA_HOME; no GPU is needed to build.
#
# Environment:
#   Kokkos_ROOT       use this installed Kokkos (any version >= 3.4, any backend); nothing is rebuilt.
#                     With --cuda, its bin/nvcc_wrapper is the compiler.
#   EMBSR_CACHE_DIR   where the self-built Kokkos is cached (default: ~/.cache/embsr)
#   EMBSR_JOBS        parallel build jobs (default: nproc)
#   CUDA_HOME         CUDA toolkit for --cuda (default: /usr/local/cuda)
#   EMBSR_CUDA_ARCH   Kokkos architecture for --cuda (default: AMPERE80; its PTX also runs on
#                     newer GPUs such as the H100, compiled by the driver at first use)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build_dir="$root/build"
build_type="Release"
sanitize=0
do_build=1
debian_kokkos=0
cuda=0
targets=()
extra_cmake=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --build-type) build_type="$2"; shift 2 ;;
    --sanitize) sanitize=1; shift ;;
    --no-build) do_build=0; shift ;;
    --debian-kokkos) debian_kokkos=1; shift ;;
    --cuda) cuda=1; shift ;;
    --target) targets+=(--target "$2"); shift 2 ;;
    --) shift; extra_cmake=("$@"); break ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

cache_dir="${EMBSR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/embsr}"
jobs="${EMBSR_JOBS:-$(nproc)}"
kokkos_version="3.4.1"
kokkos_prefix="$cache_dir/kokkos-$kokkos_version-serial-openmp"
kokkos_options=(-DKokkos_ENABLE_SERIAL=ON -DKokkos_ENABLE_OPENMP=ON)
kokkos_what="Serial + OpenMP"
cxx_compiler=()
if [[ $cuda -eq 1 ]]; then
  cuda_home="${CUDA_HOME:-/usr/local/cuda}"
  cuda_arch="${EMBSR_CUDA_ARCH:-AMPERE80}"
  [[ -x "$cuda_home/bin/nvcc" ]] || { echo "setup.sh: --cuda needs nvcc in \$CUDA_HOME/bin (CUDA_HOME=$cuda_home)" >&2; exit 1; }
  export PATH="$cuda_home/bin:$PATH"
  # nvcc_wrapper of Kokkos 3.4 defaults to sm_35, which CUDA >= 12 rejects (our patch reads this).
  case "$cuda_arch" in
    AMPERE80) sm=sm_80 ;; AMPERE86) sm=sm_86 ;; VOLTA70) sm=sm_70 ;; TURING75) sm=sm_75 ;;
    *) echo "setup.sh: EMBSR_CUDA_ARCH=$cuda_arch: use AMPERE80, AMPERE86, TURING75 or VOLTA70" >&2; exit 2 ;;
  esac
  export NVCC_WRAPPER_DEFAULT_ARCH="$sm"
  kokkos_prefix="$cache_dir/kokkos-$kokkos_version-cuda-$(echo "$cuda_arch" | tr 'A-Z' 'a-z')"
  kokkos_options+=(-DKokkos_ENABLE_CUDA=ON -DKokkos_ENABLE_CUDA_LAMBDA=ON "-DKokkos_ARCH_$cuda_arch=ON")
  kokkos_what="CUDA ($cuda_arch) + OpenMP + Serial"
fi

log() { printf '[setup] %s\n' "$*"; }
source "$root/scripts/debian_packages.sh"   # as_root, ensure_debian_packages

# ---- 1. Debian packages --------------------------------------------------------------------
packages=(build-essential cmake ninja-build pkg-config dpkg-dev xz-utils patch
          libeigen3-dev libboost-graph-dev catch2 libcli11-dev nlohmann-json3-dev
          libopenblas-openmp-dev  # the host GEMM (CMake EMBSR_BLAS=AUTO finds it); PyTorch's BLAS too
          python3 python3-numpy python3-torch  # python3-torch: the autograd oracle of the tests
          gnuplot-nox                          # embsr-train draws its training curve with it
          strace                               # tests/cli/checkpoint_faults.sh kills training at each rename/fsync
          libopenmpi-dev openmpi-bin)          # optional for users: mpirun -np N embsr-train (data-parallel)
if [[ $debian_kokkos -eq 1 ]]; then packages+=(libtrilinos-kokkos-dev); fi
ensure_debian_packages "${packages[@]}"

# ---- 2. Kokkos ---------------------------------------------------------------------------------
# A user-supplied Kokkos wins; otherwise our cached Serial+OpenMP build; otherwise build it from
# Debian's own trilinos source package (Debian's libtrilinos-kokkos-dev is Serial-only).
kokkos_root=""
if [[ $debian_kokkos -eq 1 ]]; then
  kokkos_root=/usr
  log "using Debian's Kokkos (libtrilinos-kokkos-dev, Serial only)"
elif [[ -n "${Kokkos_ROOT:-}" ]]; then
  kokkos_root="$Kokkos_ROOT"
  log "using Kokkos from Kokkos_ROOT=$kokkos_root"
elif [[ -f "$kokkos_prefix/.embsr-complete" ]]; then
  kokkos_root="$kokkos_prefix"
  log "using cached Kokkos $kokkos_version at $kokkos_root"
else
  log "building Kokkos $kokkos_version ($kokkos_what) from Debian's trilinos source into $kokkos_prefix"
  src_cache="$cache_dir/src"
  mkdir -p "$src_cache"
  if ! ls "$src_cache"/trilinos_*.orig.tar.* >/dev/null 2>&1; then
    # Enable deb-src by deriving a sources file from the machine's own Debian sources.
    src_list=/etc/apt/sources.list.d/embsr-deb-src.sources
    if [[ ! -f "$src_list" ]]; then
      if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | as_root tee "$src_list" >/dev/null
      elif [[ -f /etc/apt/sources.list ]]; then
        grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' | as_root tee /etc/apt/sources.list.d/embsr-deb-src.list >/dev/null
      else
        echo "setup.sh: no Debian sources file found to derive deb-src from" >&2; exit 1
      fi
    fi
    as_root apt-get update -qq
    (cd "$src_cache" && apt-get source --download-only trilinos)
  fi
  tarball="$(ls "$src_cache"/trilinos_*.orig.tar.* | head -n1)"
  work="$(mktemp -d "$cache_dir/kokkos-build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  log "extracting packages/kokkos from $(basename "$tarball")"
  tar -xf "$tarball" -C "$work" --wildcards '*/packages/kokkos/*'
  ksrc="$(find "$work" -maxdepth 3 -type d -path '*/packages/kokkos' | head -n1)"
  [[ -n "$ksrc" ]] || { echo "setup.sh: packages/kokkos not found in $tarball" >&2; exit 1; }
  rm -rf "$kokkos_prefix"
  if [[ $cuda -eq 1 ]]; then
    # CUDA 12/13 API changes, the start-up architecture check and nvcc_wrapper's default
    # architecture: see the patch's header.
    log "applying scripts/patches/kokkos-3.4.1-cuda13.patch"
    patch -d "$ksrc" -p1 --quiet <"$root/scripts/patches/kokkos-3.4.1-cuda13.patch"
    cxx_compiler=(-DCMAKE_CXX_COMPILER="$ksrc/bin/nvcc_wrapper")
  fi
  cmake -S "$ksrc" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$kokkos_prefix" -DCMAKE_CXX_STANDARD=17 "${cxx_compiler[@]}" \
    "${kokkos_options[@]}" -DBUILD_SHARED_LIBS=ON \
    -DKokkos_ENABLE_TESTS=OFF -DKokkos_ENABLE_EXAMPLES=OFF >"$work/configure.log" \
    || { cat "$work/configure.log"; exit 1; }
  cmake --build "$work/build" -j "$jobs" >"$work/build.log" || { tail -50 "$work/build.log"; exit 1; }
  cmake --install "$work/build" >/dev/null
  touch "$kokkos_prefix/.embsr-complete"
  kokkos_root="$kokkos_prefix"
  log "Kokkos installed at $kokkos_root"
fi

# ---- 3. Configure and build embsr --------------------------------------------------------------
[[ $do_build -eq 1 ]] || { echo "$kokkos_root"; exit 0; }
cmake_args=(-S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type"
            -DKokkos_ROOT="$kokkos_root" -DEMBSR_ENABLE_TESTS=ON -DEMBSR_ENABLE_EXAMPLES=ON
            -DEMBSR_ENABLE_BENCHMARKS=ON)
# The sanitizer build runs the library's tests under ASan/UBSan: the examples (and their CLI tests),
# the benchmarks and the per-header compile check are the plain build's job; here they would only
# add compile time.
if [[ $sanitize -eq 1 ]]; then
  cmake_args+=(-DEMBSR_SANITIZE=ON -DEMBSR_ENABLE_BENCHMARKS=OFF -DEMBSR_ENABLE_EXAMPLES=OFF -DEMBSR_HEADER_CHECK=OFF)
fi
if [[ $cuda -eq 1 ]]; then
  [[ -x "$kokkos_root/bin/nvcc_wrapper" ]] || { echo "setup.sh: --cuda: no bin/nvcc_wrapper in $kokkos_root" >&2; exit 1; }
  cmake_args+=(-DCMAKE_CXX_COMPILER="$kokkos_root/bin/nvcc_wrapper" -DCUDAToolkit_ROOT="$cuda_home")
fi
if [[ ! -f "$build_dir/CMakeCache.txt" ]] || [[ ${#extra_cmake[@]} -gt 0 ]] || \
   ! grep -q "^Kokkos_ROOT:.*=$kokkos_root\$" "$build_dir/CMakeCache.txt"; then
  log "configuring $build_dir"
  cmake "${cmake_args[@]}" "${extra_cmake[@]}" >/dev/null
fi
log "building $build_dir"
cmake --build "$build_dir" -j "$jobs" "${targets[@]}"
