#!/usr/bin/env bash
# Installs what Turbo Lane needs, idempotently: Debian packages for the
# engines (libvips, LibreOffice, tesseract, poppler, ghostscript, qpdf,
# ffmpeg, pocketsphinx), and for the tests the fixture tools (vips CLI,
# espeak-ng, sox, Chromium) plus the MinIO server, nats-server and nats CLI
# binaries, built from the Go module proxy into $(go env GOPATH)/bin (outside
# the clone) when missing.
#   .ci/deps.sh          everything the tests need
#   .ci/deps.sh --run    only what `turbolane serve` needs
set -euo pipefail

RUN_ONLY=0
[ "${1:-}" = "--run" ] && RUN_ONLY=1

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# What `turbolane serve` runs: the engines.
PKGS=(pkg-config libvips-dev ffmpeg tesseract-ocr tesseract-ocr-eng
  libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
  poppler-utils ghostscript qpdf pocketsphinx pocketsphinx-en-us fonts-dejavu-core)
# What the tests need besides: fixture generators, recorded speech, a browser.
[ "$RUN_ONLY" = 0 ] && PKGS+=(libvips-tools webp espeak-ng sox pocketsphinx-testdata chromium)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$RUN_ONLY" = 1 ] && exit 0

GOBIN="$(go env GOPATH)/bin"
install_go_bin() { # name module@version
  if [ ! -x "$GOBIN/$1" ]; then
    echo "deps: building $1 from the Go module proxy (minutes the first time)"
    (cd /tmp && GOFLAGS= GOBIN="$GOBIN" go install "$2")
  fi
}
install_go_bin minio github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
install_go_bin nats-server github.com/nats-io/nats-server/v2@v2.15.3
install_go_bin nats github.com/nats-io/natscli/nats@v0.5.0
