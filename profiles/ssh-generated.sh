#!/bin/sh
# A tenant with a generated SSH key pair and one SLURM target.
set -eu
apf-agent tenant add atlas --description "ATLAS pilots"
# The passphrase encrypts the key at rest (bcrypt + aes256-ctr, as ssh-keygen); it is stored 0600 next to it.
printf %s "$KEY_PASSPHRASE" | apf-agent profile add atlas-ssh --tenant atlas --kind ssh --generate --passphrase-stdin
apf-agent profile show atlas-ssh            # copy the public key line into ~atlaspilot/.ssh/authorized_keys
apf-agent target add cluster1 --tenant atlas --host login.cluster1.example.org --user atlaspilot \
    --batch slurm --partition short --account atlas --profile atlas-ssh --max-pilots 500 --max-queued 50
apf-agent target trust cluster1             # shows SHA256:…; compare with the site's published fingerprint
apf-agent target trust cluster1 --fingerprint "$SITE_FINGERPRINT"
apf-agent target check cluster1             # logs in, finds sbatch/squeue/scancel and their version
