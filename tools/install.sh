#!/usr/bin/env bash
# Builds the pinned Go tools into tools/bin/ from the checksum-verified modules beside this script.
# A tool already built at its pinned version (and with cgo where asked) is skipped; TOOLS_BIN puts
# them elsewhere (to try a build beside the ones in use). a missing Go toolchain is reported, not fatal, so that the tests
# that need these binaries can skip with a reason instead of the whole run failing. It also installs
# Debian's chromium when missing (`tools/install.sh chromium` does only that).
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${TOOLS_BIN:-"$here/bin"}
mkdir -p "$bin"
only=${1:-all}

# Debian's chromium opens the HTML report in test/integration/report-chromium.test.ts; the fonts give
# its screenshot legible text. Recommends are skipped: a headless browser needs none of them.
install_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    echo "tools: chromium already installed"
    return
  fi
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "tools: chromium is missing and this is not root with apt-get; install it with: apt-get install chromium" >&2
    return
  fi
  echo "tools: installing Debian's chromium with apt-get"
  local packages="chromium fonts-dejavu-core"
  # The package lists may be missing or stale on a fresh machine: refresh them once and retry.
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null; then
      echo "tools: installing chromium with apt-get failed; the report test will say so" >&2
    fi
  fi
}
case "$only" in all|chromium) install_chromium ;; esac
[ "$only" = chromium ] && exit 0

if ! command -v go >/dev/null 2>&1; then
  echo "tools: Go is not installed; temporal, spire-server and spire-agent were not built." >&2
  echo "tools: tests that need them will skip and say so. Install Go >= 1.26 to run them." >&2
  exit 0
fi

status=0
# The pinned version of a tool's main module, as tools/<module>/go.mod requires it.
pinned_version() { # module-dir main-module
  awk -v m="$2" '$1 == m { print $2 } $1 == "require" && $2 == m { print $3 }' "$here/$1/go.mod" | head -n 1
}

# Whether the built binary is the one asked for: the pinned version of its main module, and built
# with cgo when asked (an older checkout built spire-server without it). Go records both in it.
up_to_date() { # binary main-module version cgo
  local info
  info=$(go version -m "$1" 2>/dev/null) || return 1
  printf '%s\n' "$info" | grep -Eq "^[[:space:]]+(mod|dep)[[:space:]]+$2[[:space:]]+$3([[:space:]]|$)" || return 1
  [ "$4" = 1 ] || return 0
  printf '%s\n' "$info" | grep -q "CGO_ENABLED=1"
}

build() { # module-dir binary-name package main-module cgo(0|1)
  local module=$1 name=$2 pkg=$3 main=$4 cgo=$5 version
  version=$(pinned_version "$module" "$main")
  if [ "$cgo" = 1 ] && ! command -v "${CC:-gcc}" >/dev/null 2>&1; then
    echo "tools: no C compiler (${CC:-gcc}): building $name without cgo, so real SPIRE's embedded (sqlite3) datastore is unavailable" >&2
    cgo=0
  fi
  if [ -x "$bin/$name" ] && up_to_date "$bin/$name" "$main" "$version" "$cgo"; then
    echo "tools: $name already built ($main $version)"
    return
  fi
  echo "tools: building $name from $pkg ($main $version, pinned in tools/$module/go.mod; cgo $cgo; a cold build takes minutes)"
  if (cd "$here/$module" && CGO_ENABLED=$cgo go build -trimpath -o "$bin/$name.partial" "$pkg"); then
    mv "$bin/$name.partial" "$bin/$name"
  else
    rm -f "$bin/$name.partial"
    echo "tools: building $name failed" >&2
    status=1
  fi
}

case "$only" in
  all|temporal) build temporal temporal github.com/temporalio/cli/cmd/temporal github.com/temporalio/cli 0 ;;&
  all|spire)
    # spire-server with cgo: its sqlite3 datastore (a topology's "embedded" one under real SPIRE) needs it.
    build spire spire-server github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire 1
    build spire spire-agent github.com/spiffe/spire/cmd/spire-agent github.com/spiffe/spire 0
    ;;
esac
exit $status
