#!/bin/sh
# An EC2 access key; the secret comes from stdin. --endpoint is for EC2-compatible clouds.
set -eu
printf %s "$AWS_SECRET_ACCESS_KEY" | apf-agent profile add atlas-aws --tenant atlas --kind ec2 \
    --access-key-id "$AWS_ACCESS_KEY_ID" --region us-east-1 --secret-stdin
apf-agent profile check atlas-aws           # a SigV4-signed DescribeRegions
