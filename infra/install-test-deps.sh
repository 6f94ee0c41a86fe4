#!/usr/bin/env bash
# Installs the Debian tools the tests drive (dig, kdig, redis-server, dnsperf, wrk,
# prometheus, chromium, stress-ng, the knotd, named and nsd that follow the origin as secondaries, and
# the resolvers measure is tested against: unbound, named, pdns_recursor, kresd)
# when any is missing. Safe to run again: it does nothing when all are present.
set -euo pipefail
need=()
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v kdig >/dev/null || need+=(knot-dnsutils)
command -v redis-server >/dev/null || need+=(redis-server)
# redis-cli --cluster create joins the Redis Cluster of test/e2e/cluster.test.ts.
command -v redis-cli >/dev/null || need+=(redis-tools)
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v wrk >/dev/null || need+=(wrk)
command -v prometheus >/dev/null || need+=(prometheus)
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || need+=(knot)
command -v named >/dev/null || [ -x /usr/sbin/named ] || need+=(bind9)
command -v tsig-keygen >/dev/null || [ -x /usr/sbin/tsig-keygen ] || need+=(bind9-utils)
command -v nsd >/dev/null || [ -x /usr/sbin/nsd ] || need+=(nsd)
command -v unbound >/dev/null || need+=(unbound)
command -v pdns_recursor >/dev/null || need+=(pdns-recursor)
command -v kresd >/dev/null || need+=(knot-resolver)
# test/faults/partition.test.ts: ip netns and veth pairs (iproute2), curl inside the namespace.
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
# The dashboard's browser test drives it through playwright-core (executablePath /usr/bin/chromium).
command -v chromium >/dev/null || need+=(chromium)
# Keeps the other core busy while the suite runs (issue 14's "10 runs in a row with the
# other core busy": `stress-ng --cpu 1 &` next to `npm run check`) and loads the benches.
command -v stress-ng >/dev/null || need+=(stress-ng)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
