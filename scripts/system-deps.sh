#!/usr/bin/env bash
# Install the Debian packages the test suite uses, when missing. Needs root (or sudo).
set -euo pipefail
missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
# promtool checks deploy/prometheus/alerts.yml (the prometheus package ships it).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The dashboard's browser test drives headless Chromium through chromedriver (selenium).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
# The SASL_SSL broker test makes its CA and certificates with the openssl CLI.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "missing: ${missing[*]} — install them with apt-get (needs root)" >&2
  exit 1
fi
echo "installing ${missing[*]} (apt-get)..." >&2
# Packages must not start services (prometheus would listen on every interface): a
# policy-rc.d that refuses, for the length of the install, unless one exists already.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  own_policy=1
fi
trap '[ -n "$own_policy" ] && $sudo rm -f "$policy"' EXIT
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
