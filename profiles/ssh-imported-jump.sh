#!/bin/sh
# An existing key (mode 0600, passphrase in a 0600 file), a gateway and a cluster behind it.
set -eu
apf-agent profile add cms-ssh --tenant cms --kind ssh --key-file ~/.ssh/cms_ed25519 \
    --passphrase-file ~/.ssh/cms_ed25519.pass
apf-agent target add cms-gw --tenant cms --host gw.site.example.org --user cmspilot --batch local --profile cms-ssh
apf-agent target add cms-hpc --tenant cms --host hpc-login.internal --user cmspilot --batch pbs \
    --profile cms-ssh --jump cms-gw
apf-agent target trust cms-gw --fingerprint "$GW_FINGERPRINT"
apf-agent target trust cms-hpc --fingerprint "$HPC_FINGERPRINT"   # fetched through cms-gw
apf-agent target check cms-hpc
