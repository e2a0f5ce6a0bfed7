#!/bin/sh
# VOMS proxies: renewal runs voms-proxy-init as an argument vector (no shell). {cert} {key} {out} {hours} are
# filled in by the agent; the new proxy is checked, then atomically replaces the old one.
set -eu
apf-agent profile add atlas-prod --tenant atlas --kind x509 \
    --cert ~/.globus/usercert.pem --key ~/.globus/userkey-nopass.pem --lifetime 96h --minlife 24h \
    --renew 'command:["voms-proxy-init","-voms","atlas:/atlas/Role=production","-cert","{cert}","-key","{key}","-out","{out}","-valid","{hours}:00","-rfc"]'
apf-agent profile check atlas-prod          # the first check creates the first proxy
# A MyProxy delegation instead (passphrase-less retrieval with a host credential):
#   --renew 'command:["myproxy-logon","-s","myproxy.example.org","-l","atlasprod","-n","-t","{hours}","-o","{out}"]'
