#!/bin/sh
# Bundle the built `cddp` binary with the shared libraries it needs, for GPU
# hosts without internet access (and without MPI/HDF5/OpenBLAS installed).
#
#   scripts/bundle-gpu.sh [BINARY] [OUTDIR]      (defaults: build/cddp dist/cddp-gpu)
#   tar czf cddp-gpu.tgz -C dist cddp-gpu         # copy it over, unpack, then
#   cddp-gpu/cddp train ...                       # or: cddp-gpu/mpirun -np 4 cddp-gpu/cddp ...
#
# What goes in (see docs/cuda.md):
#   - every library `ldd` resolves for the binary (MPI, HDF5, OpenBLAS,
#     gfortran/quadmath, inih, json-c, zlib, libstdc++/libgcc_s/libgomp, and
#     the CUDA toolkit libraries: cudart, cuBLAS, cuBLASLt, cuDNN, NCCL);
#   - cuDNN's sub-libraries, which libcudnn loads with dlopen at run time;
#   - Open MPI's launcher (mpirun/orted), its plugin directory and help files,
#     relocated with OPAL_PREFIX, so that multi-rank runs work on a host
#     without Open MPI (same-host launches; untested across nodes).
# What stays out, on purpose:
#   - glibc (libc, libm, libpthread, libdl, librt, ld-linux): must match the
#     host's kernel interface; the host needs glibc >= the build machine's;
#   - the NVIDIA driver (libcuda, libnvidia-*): always the host's own.
set -eu

BIN=${1:-build/cddp}
OUT=${2:-dist/cddp-gpu}
die() { echo "bundle-gpu: $*" >&2; exit 1; }
[ -x "$BIN" ] || die "no executable at $BIN (build it first: cmake --build build --target cddp)"
command -v ldd >/dev/null || die "ldd not found"

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"
cp "$BIN" "$OUT/bin/cddp"

skip_lib() {
  case "$1" in
    linux-vdso.so*|ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*) return 0 ;;
    libresolv.so*|libutil.so*|libanl.so*|libnsl.so*) return 0 ;;
    libcuda.so*|libnvidia-*|libnvcuvid.so*) return 0 ;;
  esac
  return 1
}

# copy_deps FILE: copy every library ldd resolves for FILE into $OUT/lib
copy_deps() {
  ldd "$1" | while read -r name arrow path rest; do
    [ "$arrow" = "=>" ] || continue
    skip_lib "$name" && continue
    [ "$path" = "not" ] && die "$1 needs $name, which ldd cannot find"
    [ -e "$OUT/lib/$name" ] || cp -L "$path" "$OUT/lib/$name"
  done
}
copy_deps "$BIN"
# the test programs scripts/gpu-check.sh runs from the build tree (cmocka, ...)
for t in tests/cuda/cuda_parity tests/cli/ckpt_compare tests/train/train_ckpt_hash; do
  [ -x "$(dirname "$BIN")/$t" ] && copy_deps "$(dirname "$BIN")/$t"
done

# cuDNN 9 loads its engine/graph/ops libraries with dlopen: take them all.
if ls "$OUT"/lib/libcudnn.so* >/dev/null 2>&1; then
  src=$(ldd "$BIN" | awk '$1 ~ /^libcudnn\.so/ {print $3; exit}')
  for f in "$(dirname "$src")"/libcudnn_*.so.[0-9]*; do
    [ -e "$f" ] || continue
    base=$(basename "$f")
    case "$base" in *.so.[0-9]) cp -L "$f" "$OUT/lib/$base" ;; esac
  done
fi

# Open MPI launcher, relocated under $OUT/mpi (OPAL_PREFIX).
MPIRUN=$(command -v mpirun || true)
if [ -n "$MPIRUN" ] && command -v ompi_info >/dev/null; then
  prefix=$(ompi_info --path prefix --parsable | sed 's/.*prefix://')
  pkglib=$(ompi_info --path pkglibdir --parsable | sed 's/.*pkglibdir://')
  pkgdata=$(ompi_info --path pkgdatadir --parsable | sed 's/.*pkgdatadir://')
  bindir=$(ompi_info --path bindir --parsable | sed 's/.*bindir://')
  M="$OUT/mpi"
  mkdir -p "$M/bin"
  for exe in orterun orted prte prterun mpirun; do
    [ -e "$bindir/$exe" ] || continue
    cp -L "$bindir/$exe" "$M/bin/$exe"
    copy_deps "$bindir/$exe"
  done
  for d in "$pkglib" "$pkgdata"; do
    case "$d" in "$prefix"/*) ;; *) continue ;; esac
    rel=${d#"$prefix"/}
    mkdir -p "$M/$rel"
    cp -rL "$d/." "$M/$rel/"
  done
  for plugin in "$pkglib"/*.so; do
    [ -e "$plugin" ] && copy_deps "$plugin"
  done
fi

# An external PMIx (Debian) loads its own plugins from a fixed directory.
if [ -e "$OUT/lib/libpmix.so.2" ]; then
  for d in /usr/lib/x86_64-linux-gnu/pmix2/lib/pmix /usr/lib/x86_64-linux-gnu/pmix/lib/pmix; do
    if [ -d "$d" ]; then
      mkdir -p "$OUT/pmix"
      cp -rL "$d/." "$OUT/pmix/"
      for plugin in "$d"/*.so; do [ -e "$plugin" ] && copy_deps "$plugin"; done
      break
    fi
  done
fi

# Wrappers: the bundled libraries first, the host's driver from the system.
cat > "$OUT/cddp" <<'WRAP'
#!/bin/sh
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
[ -d "$here/mpi" ] && export OPAL_PREFIX="$here/mpi"
[ -d "$here/pmix" ] && export PMIX_MCA_mca_base_component_path="$here/pmix"
exec "$here/bin/cddp" "$@"
WRAP
if [ -d "$OUT/mpi/bin" ]; then
  cat > "$OUT/mpirun" <<'WRAP'
#!/bin/sh
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OPAL_PREFIX="$here/mpi"
export PATH="$here/mpi/bin:$PATH"
fwd="-x LD_LIBRARY_PATH -x OPAL_PREFIX"
if [ -d "$here/pmix" ]; then
  export PMIX_MCA_mca_base_component_path="$here/pmix"
  fwd="$fwd -x PMIX_MCA_mca_base_component_path"
fi
for exe in mpirun orterun prterun; do
  [ -x "$here/mpi/bin/$exe" ] && exec "$here/mpi/bin/$exe" $fwd "$@"
done
echo "bundle: no MPI launcher bundled" >&2
exit 1
WRAP
  chmod +x "$OUT/mpirun"
fi
chmod +x "$OUT/cddp"

echo "bundle-gpu: $OUT ($(du -sh "$OUT" | cut -f1)), $(ls "$OUT/lib" | wc -l) libraries"
echo "bundle-gpu: run $OUT/cddp ... (host needs an NVIDIA driver for CUDA 13 and glibc >= $(ldd --version | head -1 | awk '{print $NF}'))"
