#!/usr/bin/env bash
# Installs the real DNS peers the end-to-end tests talk to, from Debian's packages, when they are
# missing: dig (bind9-dnsutils), kdig and knotd (knot-dnsutils, knot) and curl. Package scripts
# must not start daemons here: the tests start their own on free ports.
set -euo pipefail
need=()
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v kdig >/dev/null || need+=(knot-dnsutils)
command -v knotd >/dev/null || need+=(knot)
command -v curl >/dev/null || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
# policy-rc.d keeps the packages' post-install scripts from starting knotd on port 53.
printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
$sudo chmod +x /usr/sbin/policy-rc.d
trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
