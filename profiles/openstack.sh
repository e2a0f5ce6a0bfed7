#!/bin/sh
# A Keystone v3 application credential (openstack application credential create apf-agent).
set -eu
printf %s "$OS_APPLICATION_CREDENTIAL_SECRET" | apf-agent profile add atlas-os --tenant atlas --kind openstack \
    --auth-url https://keystone.example.org:5000/v3 --application-credential-id "$OS_APPLICATION_CREDENTIAL_ID" \
    --project atlas-cloud --region RegionOne --secret-stdin
apf-agent profile check atlas-os            # a token for the project; compute endpoint in RegionOne
