#!/usr/bin/env bash
# Builds the pinned Go tools into tools/bin/ from the checksum-verified modules beside this script.
# Already-built tools are skipped; a missing Go toolchain is reported, not fatal, so that the tests
# that need these binaries can skip with a reason instead of the whole run failing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/bin"
mkdir -p "$bin"

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

only=${1:-all}
case "$only" in
  all|temporal) build temporal temporal github.com/temporalio/cli/cmd/temporal ;;&
  all|spire)
    build spire spire-server github.com/spiffe/spire/cmd/spire-server
    build spire spire-agent github.com/spiffe/spire/cmd/spire-agent
    ;;
esac
exit $status
