#!/usr/bin/env bash
# Install what the tests need from Debian's packages, only when it is missing: ZooKeeper (the
# coordination service), PostgreSQL (the multi-host journal), bubblewrap (sandbox namespaces), and
# slirp4netns + iproute2 (each sandbox's network namespace and its filtered egress).
set -euo pipefail
missing=()
ls /usr/share/java/zookeeper*.jar >/dev/null 2>&1 || missing+=(zookeeper)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v slirp4netns >/dev/null 2>&1 || missing+=(slirp4netns)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v curl >/dev/null 2>&1 || missing+=(curl)  # the shell custom-runtime test
if [ ${#missing[@]} -eq 0 ]; then
  echo "system-deps: zookeeper, postgresql, bubblewrap, slirp4netns, iproute2 present"
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
