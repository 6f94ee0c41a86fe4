#!/usr/bin/env bash
# Installs the Debian tools the tests drive (dig, kdig, redis-server, dnsperf, wrk, prometheus, chromium)
# when any is missing. Safe to run again: it does nothing when all are present.
set -euo pipefail
need=()
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v kdig >/dev/null || need+=(knot-dnsutils)
command -v redis-server >/dev/null || need+=(redis-server)
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v wrk >/dev/null || need+=(wrk)
command -v prometheus >/dev/null || need+=(prometheus)
# The dashboard's browser test drives it through playwright-core (executablePath /usr/bin/chromium).
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
