#!/usr/bin/env bash
# Installs what the verifier needs at run time, beside this script (all git-ignored):
#   models/onnx/*.onnx            the five models of models.toml, every sha256 checked
#   models/lib/libonnxruntime.so  ONNX Runtime's shared library, from the onnxruntime wheel
# Model sources, first found wins: $ANONCHAT_MODELS_SRC, ../shared/models (beside the checkout),
# then each model's upstream source. Safe to run again: it only checks what is already there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifest="$here/models.toml"
onnx_dir="$here/onnx"
lib_dir="$here/lib"
ort_version=$(sed -n '/^\[onnxruntime\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$manifest")

die() { echo "models/install.sh: $*" >&2; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# `name file sha256 upstream` for each model section of the manifest.
models() {
  awk -F' = ' '
    /^\[/ { sect = $0; gsub(/[][]/, "", sect); next }
    sect != "onnxruntime" && $1 == "file"     { gsub(/"/, "", $2); file[sect] = $2; order[++n] = sect }
    sect != "onnxruntime" && $1 == "sha256"   { gsub(/"/, "", $2); hash[sect] = $2 }
    sect != "onnxruntime" && $1 == "upstream" { gsub(/"/, "", $2); up[sect] = $2 }
    END { for (i = 1; i <= n; i++) { s = order[i]; print s, file[s], hash[s], (up[s] == "" ? "-" : up[s]) } }
  ' "$manifest"
}

fetch_upstream() { # name file upstream dest
  local name=$1 file=$2 upstream=$3 dest=$4
  case "$upstream" in
    -) die "$file ($name) is not in \$ANONCHAT_MODELS_SRC or ../shared/models, and it has no public download (its upstream publishes PyTorch weights only). Point ANONCHAT_MODELS_SRC at a folder holding it." ;;
    pypi:*)
      local spec=${upstream#pypi:}; spec=${spec%%:*}; local member=${upstream##*:}
      local tmp; tmp=$(mktemp -d)
      python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$spec" \
        || die "could not download $spec for $file"
      python3 -m zipfile -e "$tmp"/*.whl "$tmp/x" && cp "$tmp/x/$member" "$dest"
      rm -rf "$tmp" ;;
    *) curl -fsSL --retry 3 -o "$dest" "$upstream" || die "could not download $file from $upstream" ;;
  esac
}

install_models() {
  mkdir -p "$onnx_dir"
  local sources=()
  [ -n "${ANONCHAT_MODELS_SRC:-}" ] && sources+=("$ANONCHAT_MODELS_SRC")
  [ -d "$here/../../shared/models" ] && sources+=("$(cd "$here/../../shared/models" && pwd)")
  while read -r name file hash upstream; do
    local dest="$onnx_dir/$file"
    if [ -f "$dest" ] && [ "$(sha "$dest")" = "$hash" ]; then continue; fi
    rm -f "$dest"
    local src
    for src in "${sources[@]}"; do
      if [ -f "$src/$file" ]; then cp "$src/$file" "$dest.part"; break; fi
    done
    [ -f "$dest.part" ] || fetch_upstream "$name" "$file" "$upstream" "$dest.part"
    local got; got=$(sha "$dest.part")
    if [ "$got" != "$hash" ]; then
      rm -f "$dest.part"
      die "sha256 mismatch for $file: expected $hash, got $got. Refusing to install it."
    fi
    mv "$dest.part" "$dest"
    echo "installed $file"
  done < <(models)
}

install_onnxruntime() {
  mkdir -p "$lib_dir"
  local lib="$lib_dir/libonnxruntime.so"
  if [ -f "$lib" ] && [ "$(cat "$lib_dir/VERSION" 2>/dev/null)" = "$ort_version" ]; then return; fi
  local tmp; tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==$ort_version" \
    || die "could not download the onnxruntime $ort_version wheel (pip download)"
  python3 - "$tmp"/onnxruntime-*.whl "$lib.part" <<'PY'
import re, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if re.fullmatch(r"onnxruntime/capi/libonnxruntime\.so\.\d+\.\d+\.\d+", n)]
    if not names:
        sys.exit(f"no libonnxruntime.so.X.Y.Z inside {wheel}")
    with z.open(names[0]) as src, open(dest, "wb") as out:
        out.write(src.read())
PY
  mv "$lib.part" "$lib"
  echo "$ort_version" > "$lib_dir/VERSION"
  rm -rf "$tmp"
  echo "installed ONNX Runtime $ort_version at $lib"
}

install_models
install_onnxruntime
