#!/bin/sh
# Native RFC 3820 proxies from a user certificate and an unencrypted 0600 key; renewed when < 6h are left.
set -eu
apf-agent profile add atlas-proxy --tenant atlas --kind x509 \
    --cert ~/.globus/usercert.pem --key ~/.globus/userkey-nopass.pem \
    --lifetime 48h --minlife 6h --ca-dir /etc/grid-security/certificates
apf-agent profile check atlas-proxy         # chain, CA, time left; renews below minlife
apf-agent profile show atlas-proxy --json
