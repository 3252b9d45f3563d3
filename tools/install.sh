#!/usr/bin/env bash
# Builds the pinned Go tools into tools/bin/ from the checksum-verified modules beside this script.
# Already-built tools are skipped; a missing Go toolchain is reported, not fatal, so that the tests
# that need these binaries can skip with a reason instead of the whole run failing. It also installs
# Debian's chromium when missing (`tools/install.sh chromium` does only that).
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/bin"
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
build() { # module-dir binary-name package
  local module=$1 name=$2 pkg=$3
  if [ -x "$bin/$name" ]; then
    echo "tools: $name already built"
    return
  fi
  echo "tools: building $name from $pkg (pinned in tools/$module/go.mod; a cold build takes minutes)"
  if (cd "$here/$module" && CGO_ENABLED=0 go build -trimpath -o "$bin/$name.partial" "$pkg"); then
    mv "$bin/$name.partial" "$bin/$name"
  else
    rm -f "$bin/$name.partial"
    echo "tools: building $name failed" >&2
    status=1
  fi
}

case "$only" in
  all|temporal) build temporal temporal github.com/temporalio/cli/cmd/temporal ;;&
  all|spire)
    build spire spire-server github.com/spiffe/spire/cmd/spire-server
    build spire spire-agent github.com/spiffe/spire/cmd/spire-agent
    ;;
esac
exit $status
