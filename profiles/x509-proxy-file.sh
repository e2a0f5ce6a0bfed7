#!/bin/sh
# A proxy renewed by something else; the agent only checks it (and never hands out an expired one).
set -eu
apf-agent profile add site-proxy --tenant atlas --kind x509 --proxy-file /tmp/x509up_u1000 --minlife 1h --renew none
apf-agent profile check site-proxy
