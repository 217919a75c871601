#!/usr/bin/env bash
# Installs real DNS peers from Debian's packages when they are missing. With no arguments: what
# the end-to-end tests talk to, dig (bind9-dnsutils), kdig and knotd (knot-dnsutils, knot),
# curl, and for module delivery a real OCI registry (docker-registry), minisign and htpasswd
# (apache2-utils). Arguments add COMMAND:PACKAGE pairs (the benchmark adds dnsperf:dnsperf nsd:nsd).
# Package scripts must not start daemons here: tests and benchmarks start their own.
set -euo pipefail
need=()
for pair in dig:bind9-dnsutils kdig:knot-dnsutils knotd:knot curl:curl docker-registry:docker-registry \
    minisign:minisign htpasswd:apache2-utils "$@"; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
# policy-rc.d keeps the packages' post-install scripts from starting daemons on port 53.
printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
$sudo chmod +x /usr/sbin/policy-rc.d
trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
