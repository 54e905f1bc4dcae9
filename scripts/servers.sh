#!/usr/bin/env bash
# Installs or builds the servers the tests need and exports where they are.
# Sourced by scripts/test.sh; safe to run again (everything is cached).
#   ZooKeeper 3.8: Debian's zookeeper package (needs root and apt).
#   Consul 1.14 (the last open-source line we use): built from the Go module
#   proxy by internal/tools/consul, cached in ${REGENT_CACHE}.
#   etcd: nothing to install, the tests run it in-process.
set -euo pipefail
REGENT_CACHE=${REGENT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/regent}
export REGENT_CACHE

if [ ! -f /usr/share/java/zookeeper.jar ]; then
  echo "servers: installing ZooKeeper (Debian package zookeeper)" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends zookeeper default-jre-headless
fi
export REGENT_ZOOKEEPER_JAR=/usr/share/java/zookeeper.jar

consul_bin="$REGENT_CACHE/bin/consul-v1.14.0"
if [ ! -x "$consul_bin" ]; then
  echo "servers: building Consul v1.14.0 from the Go module proxy (a few minutes, once)" >&2
  mkdir -p "$REGENT_CACHE/bin"
  (cd "$(dirname "${BASH_SOURCE[0]}")/../internal/tools/consul" && go build -o "$consul_bin.tmp" github.com/hashicorp/consul && mv "$consul_bin.tmp" "$consul_bin")
fi
export REGENT_CONSUL="$consul_bin"
